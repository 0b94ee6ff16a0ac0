/**
 * `startService`: the login service in the calling process, for embedding (tests, a host app that
 * wants the service next to its own code). One process, no node:cluster: the same backend, users
 * file, throttle, SessionService and Express app a worker builds (cluster/worker.ts), listening on
 * `config.host:config.port`. Use `npx bangui-session-cache` for the multi-worker service.
 */
import type { AddressInfo } from "node:net";
import { LoginThrottle } from "../auth/throttle";
import { SessionService } from "../auth/session-service";
import { ensureUsersFile, UserStore } from "../auth/users";
import { createKeySpace, createSessionBackend, type SessionCache } from "../cache";
import { loadConfig, type Config } from "../config";
import { silentLogger, type Logger } from "../logger";
import { metrics } from "../metrics";
import { createApp } from "./app";
import { createGracefulServer } from "./http";

/** Options of `startService`. */
export interface StartServiceOptions {
  /** The configuration; @default loadConfig(env) */
  config?: Config;
  /** Environment read when `config` is not given. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Root logger. @default a silent logger */
  logger?: Logger;
  /** Create the users file with a user `admin` when it does not exist (its password is returned once). @default true */
  createUsersFile?: boolean;
}

/** A running embedded service. */
export interface RunningService {
  /** Where it listens (`port` is the real one when `BANGUI_PORT=0`). */
  readonly address: AddressInfo;
  /** `http://host:port` of the service. */
  readonly url: string;
  /** The session cache it uses. */
  readonly cache: SessionCache;
  /** Set when this call created the users file: the `admin` password, shown nowhere else. */
  readonly initialAdminPassword: string | undefined;
  /** Drains the HTTP server (up to `timeoutMs`), then closes the users file watch and the backend. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Starts the login service in this process.
 * @example
 * const service = await startService({ env: { BANGUI_PORT: "0", BANGUI_REDIS_URL: "redis://127.0.0.1:6379" } });
 * console.log(service.url);
 * await service.close();
 */
export async function startService(options: StartServiceOptions = {}): Promise<RunningService> {
  const config = options.config ?? loadConfig(options.env ?? process.env);
  const rootLogger = options.logger ?? silentLogger();
  let initialAdminPassword: string | undefined;
  if (options.createUsersFile ?? true) {
    const created = await ensureUsersFile(config.usersFile);
    if (created.created) initialAdminPassword = created.password;
  }
  const backend = createSessionBackend(config, { logger: rootLogger, registry: metrics.registry });
  let users: UserStore | undefined;
  try {
    users = await UserStore.open(config.usersFile, { logger: rootLogger.child({ component: "users" }) });
    const throttle = new LoginThrottle({
      maxFailures: config.loginMaxFailures,
      windowSeconds: config.loginWindowSeconds,
      ...(backend.redis ? { redis: backend.redis } : {}),
      keyPrefix: createKeySpace(config.keyPrefix).throttlePrefix,
    });
    const sessions = new SessionService({
      cache: backend.cache,
      users,
      throttle,
      ttlSeconds: config.sessionTtlSeconds,
      ...(config.sessionIdleSeconds !== undefined ? { idleSeconds: config.sessionIdleSeconds } : {}),
      ...(config.maxSessionsPerUser !== undefined ? { maxSessionsPerUser: config.maxSessionsPerUser } : {}),
      logger: rootLogger.child({ component: "sessions" }),
    });
    const app = createApp({
      sessions,
      config,
      logger: rootLogger,
      ready: () => backend.cache.ping().then(() => true, () => false),
    });
    const http = createGracefulServer(app);
    const address = await http.listen(config.port, config.host);
    const openUsers = users;
    let closing: Promise<void> | undefined;
    return {
      address,
      url: `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`,
      cache: backend.cache,
      initialAdminPassword,
      close(timeoutMs = config.shutdownTimeoutMs) {
        closing ??= http.drain(timeoutMs).then(async () => {
          openUsers.close();
          await backend.close();
        });
        return closing;
      },
    };
  } catch (err) {
    users?.close();
    await backend.close().catch(() => undefined);
    throw err;
  }
}
