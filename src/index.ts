/** bangui-session-cache: the library entry point (cache layer, Session schema, config, errors). */
export * from "./cache";
export { loadConfig, type Config } from "./config";
export { parseRedisUrl, type RedisTarget, type RedisNode } from "./redis-url";
export { SessionBackendUnavailableError, ConfigError } from "./errors";
export { createLogger, silentLogger, type Logger } from "./logger";
