/** The only import point of the cache layer for the rest of `src/` (types, keys, errors, backends, factory). */
export * from "./types";
export * from "./keys";
export * from "./errors";
export * from "./memory";
export * from "./noop";
export * from "./redis";
export * from "./factory";
export * from "./near-cache";
export { NearCacheCore, deepFreeze, type NearCacheCoreOptions, type NearCacheCounters } from "./near-core";
export * from "./ipc";
export * from "./ipc-server";
export * from "./sessions-file";
export * from "./metrics";
export * from "./is-cluster";
export * from "./redis-version";
