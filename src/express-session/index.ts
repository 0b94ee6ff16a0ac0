/**
 * `bangui-session-cache/express-session`: `RedisSessionStore`, an express-session store on ioredis.
 * Needs `ioredis`; `express-session` when used with it (its `Store` base class is used when installed).
 */
export { RedisSessionStore, type RedisSessionStoreOptions, type SessionInput, type StoreSessionData, type UserSession } from "./store";
export { SessionBackendUnavailableError } from "../errors";
export type { Callback } from "./callbacks";
export type { StoreKeySpace } from "../cache/keys";
export type { NearFreshness } from "../cache/near-core";
