/**
 * One cluster worker: session backend -> users file -> login throttle -> SessionService -> Express app,
 * listening on BANGUI_HOST:BANGUI_PORT (the primary owns the socket, so every worker shares the port).
 * Drains on the primary's "bangui:drain" message, or on SIGTERM/SIGINT sent to the worker itself.
 */
import { LoginThrottle } from "../auth/throttle";
import { SessionService } from "../auth/session-service";
import { UserStore } from "../auth/users";
import { ChangeCountingCache, createKeySpace, createSessionBackend, loadSessionsFile, SessionsFile } from "../cache";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { metrics } from "../metrics";
import { createApp } from "../server/app";
import { createGracefulServer } from "../server/http";
import { createWorkerMetrics } from "./metrics-ipc";
import { DRAIN } from "./primary";

/** Bound on closing the Redis connection at the end of a drain. */
const BACKEND_CLOSE_MS = 1000;

function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/**
 * Starts the worker and resolves with the exit code once it has drained (main.ts exits with it).
 * Rejects when the worker cannot start (users file unreadable, port taken): the primary restarts it.
 */
export async function runWorker(config: Config, rootLogger: Logger): Promise<number> {
  const log = rootLogger.child({ component: "worker" });
  const workerMetrics = createWorkerMetrics();
  const backend = createSessionBackend(config, { logger: rootLogger, registry: metrics.registry });
  let users: UserStore | undefined;
  let sessionsFile: SessionsFile | undefined;
  try {
    // The memory backend's BANGUI_SESSIONS_FILE lives in its one worker (ipc: in the primary).
    if (backend.cache instanceof ChangeCountingCache && config.sessionsFile !== undefined) {
      const counting = backend.cache;
      const fileLogger = rootLogger.child({ component: "sessions-file" });
      const { loaded, expired, discarded } = await loadSessionsFile(config.sessionsFile, counting.inner);
      if (discarded > 0) fileLogger.warn({ path: config.sessionsFile, discarded }, "the service did not stop cleanly: sessions file not loaded (it may predate logouts)");
      else fileLogger.info({ path: config.sessionsFile, loaded, expired }, "sessions file loaded");
      sessionsFile = await new SessionsFile({ path: config.sessionsFile, store: counting.inner, changes: () => counting.changes, logger: fileLogger }).start();
    }
    users = await UserStore.open(config.usersFile, { logger: rootLogger.child({ component: "users" }) });
    const keys = createKeySpace(config.keyPrefix);
    const throttle = new LoginThrottle({
      maxFailures: config.loginMaxFailures,
      maxPerIp: config.loginMaxPerIp,
      windowSeconds: config.loginWindowSeconds,
      ...(backend.redis ? { redis: backend.redis } : {}),
      // ipc: the primary holds the counts (RateLimiterClusterMaster), shared by every worker.
      cluster: config.sessionBackend === "ipc",
      clusterTimeoutMs: config.ipcCommandTimeoutMs,
      keyPrefix: keys.throttlePrefix,
      ipKeyPrefix: keys.throttleIpPrefix,
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
      ready: () => backend.cache.ping().then(
        () => true,
        () => false,
      ),
      metricsText: () => workerMetrics.metricsText(),
    });
    const http = createGracefulServer(app);
    const address = await http.listen(config.port, config.host);
    log.info({ host: config.host, port: address.port }, "worker listening");

    const drained = new Promise<number>((resolve) => {
      let started = false;
      const drain = (why: string) => {
        if (started) return;
        started = true;
        // Leave the primary's deadline (which SIGKILLs) room for closing Redis after the HTTP drain.
        const httpTimeoutMs = Math.max(config.shutdownTimeoutMs - 2 * BACKEND_CLOSE_MS, Math.floor(config.shutdownTimeoutMs / 2));
        log.info({ why, inFlight: http.inFlight(), timeoutMs: httpTimeoutMs }, "draining");
        void http
          .drain(httpTimeoutMs)
          .then(async (result) => {
            if (result.forced) log.warn({ abandoned: result.abandoned }, "drain timeout: open connections destroyed");
            users?.close();
            workerMetrics.close();
            await sessionsFile?.close();
            await withTimeout(backend.close(), BACKEND_CLOSE_MS);
            log.info("worker drained");
            resolve(0);
          });
      };
      process.on("message", (message: unknown) => {
        if (typeof message === "object" && message !== null && (message as { type?: unknown }).type === DRAIN) drain("primary");
      });
      process.on("SIGTERM", () => drain("SIGTERM"));
      process.on("SIGINT", () => drain("SIGINT"));
    });
    return await drained;
  } catch (err) {
    users?.close();
    workerMetrics.close();
    await withTimeout(backend.close(), BACKEND_CLOSE_MS);
    throw err;
  }
}
