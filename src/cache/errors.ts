/** Errors of the cache layer; defined at the bottom of the tree so config and cache share them. */
export { SessionBackendUnavailableError } from "../errors";
