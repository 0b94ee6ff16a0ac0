/**
 * `bangui-session-cache/server`: the login service as functions, for embedding. Needs the service's
 * packages (express, helmet, pino-http, cookie, rate-limiter-flexible, prom-client), which are optional
 * peer dependencies of the package.
 */
export { createApp, type AppDeps } from "./app";
export { parseTrustProxy } from "../trust-proxy";
export { startService, type StartServiceOptions, type RunningService } from "./start";
export { createGracefulServer, type GracefulServer, type GracefulServerOptions, type DrainResult, type RequestHandler } from "./http";
export { loadConfig, sessionCacheOptions, type Config } from "../config";
export { SessionService, type SessionServiceOptions, type SessionSummary } from "../auth/session-service";
export { UserStore, type UserStoreOptions, type UserRecord } from "../auth/users";
export { LoginThrottle, type LoginThrottleOptions } from "../auth/throttle";
export { createSessionBackend, openSessionBackend, type SessionBackend } from "../cache";
export { createLogger, type Logger } from "../logger";
