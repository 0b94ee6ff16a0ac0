/**
 * The primary process of node:cluster (always, even for one worker: one code path).
 *
 * Messages the primary sends to workers:
 *   {type: "bangui:drain"}                      stop accepting, finish the requests in flight, close
 *                                                Redis, exit 0 (SIGTERM/SIGINT to a worker does the same)
 *   {type: "bangui:metrics-collect", id}        send this worker's prom-client registry as JSON
 *   {type: "bangui:metrics-response", id, ...}  the aggregated text for the worker's `GET /metrics`
 * and receives: "bangui:metrics-request" and "bangui:metrics-collected" (see metrics-ipc.ts).
 * Workers tell the primary they listen through cluster's own "listening" event.
 *
 * With the ipc session backend (BANGUI_SESSION_BACKEND=ipc, the default for several workers without
 * Redis) the primary also holds the sessions (cache/ipc-server.ts) and answers its workers'
 *   {type: "bangui:cache-hello" | "bangui:cache-request" | "bangui:cache-ack", ...}
 * with {type: "bangui:cache-response" | "bangui:cache-invalidate", ...} (cache/ipc-protocol.ts), and the
 * login throttle's counts (rate-limiter-flexible's RateLimiterClusterMaster, channel
 * "rate_limiter_flexible"). A worker that does not acknowledge an invalidation in time is SIGKILLed (and
 * replaced, empty): it could no longer be trusted to forget what a logout ended. With
 * BANGUI_SESSIONS_FILE the sessions are loaded before the first fork, saved every few seconds while they
 * change, and saved once more when every worker has stopped.
 *
 * Lifecycle: fork `config.workers` workers; when every one of them listens, log "listening" with the
 * address (tests read the port from that line when BANGUI_PORT=0: cluster gives every worker the same
 * port). A worker that dies while the service runs is replaced after an exponential backoff; more than
 * `maxDeaths` deaths within `deathWindowMs` means something is wrong that a restart will not fix: log
 * fatal, stop the others, exit 1. On SIGTERM/SIGINT: drain every worker, SIGKILL whatever still runs
 * after `config.shutdownTimeoutMs`, exit 0. A second signal kills the stragglers at once.
 */
import cluster, { type Worker } from "node:cluster";
import { RateLimiterClusterMaster } from "rate-limiter-flexible";
import { InMemorySessionCache } from "../cache/memory";
import { IpcSessionServer } from "../cache/ipc-server";
import { loadSessionsFile, SessionsFile } from "../cache/sessions-file";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { createPrimaryMetrics } from "./metrics-ipc";

export const DRAIN = "bangui:drain";

/** Options of `runPrimary` (tests tighten them). */
export interface PrimaryOptions {
  /** Deaths counted in this window decide the backoff and the give-up. @default 30_000 */
  deathWindowMs?: number;
  /** More deaths than this within the window: give up. @default 5 */
  maxDeaths?: number;
  /** First restart delay, doubled at each death in the window. @default 100 */
  backoffBaseMs?: number;
  /** @default 5_000 */
  backoffMaxMs?: number;
  /** How long the primary waits for the workers' metrics. @default 3_000 */
  metricsTimeoutMs?: number;
}

/**
 * Runs the primary until the service stops. @returns the process exit code: 0 after a signal-driven
 * shutdown, 1 when the workers kept dying.
 * @throws ConfigError when BANGUI_SESSIONS_FILE cannot be loaded (before any worker is forked)
 */
export async function runPrimary(config: Config, rootLogger: Logger, options: PrimaryOptions = {}): Promise<number> {
  const log = rootLogger.child({ component: "primary" });
  const ipc = config.sessionBackend === "ipc" ? await startIpcBackend(config, rootLogger) : undefined;
  const code = await runWorkers(config, log, options, ipc?.server);
  if (ipc?.file !== undefined) await ipc.file.close();
  return code;
}

/** The ipc backend's primary half: the session store (loaded from BANGUI_SESSIONS_FILE) and the throttle's counts. */
async function startIpcBackend(config: Config, rootLogger: Logger): Promise<{ server: IpcSessionServer; file: SessionsFile | undefined }> {
  const logger = rootLogger.child({ component: "ipc-sessions" });
  const server = new IpcSessionServer({
    store: new InMemorySessionCache({ maxSessions: config.memoryMaxSessions }),
    logger,
    ackTimeoutMs: Math.max(5_000, 4 * config.ipcCommandTimeoutMs),
    onUnresponsive: (peer) => {
      logger.error({ worker: peer.id }, "killing a worker that does not acknowledge invalidations");
      (peer as Worker).process.kill("SIGKILL");
    },
  });
  new RateLimiterClusterMaster();
  let file: SessionsFile | undefined;
  if (config.sessionsFile !== undefined) {
    const { loaded, expired, discarded } = await loadSessionsFile(config.sessionsFile, server.store);
    if (discarded > 0) logger.warn({ path: config.sessionsFile, discarded }, "the service did not stop cleanly: sessions file not loaded (it may predate logouts)");
    else logger.info({ path: config.sessionsFile, loaded, expired }, "sessions file loaded");
    file = await new SessionsFile({ path: config.sessionsFile, store: server.store, changes: () => server.changeCount, logger }).start();
  }
  return { server, file };
}

function runWorkers(config: Config, log: Logger, options: PrimaryOptions, sessions: IpcSessionServer | undefined): Promise<number> {
  const deathWindowMs = options.deathWindowMs ?? 30_000;
  const maxDeaths = options.maxDeaths ?? 5;
  const backoffBaseMs = options.backoffBaseMs ?? 100;
  const backoffMaxMs = options.backoffMaxMs ?? 5_000;

  const listening = new Map<number, Worker>(); // worker.id -> worker, once it listens
  const deaths: number[] = [];
  const restartTimers = new Set<NodeJS.Timeout>();
  let announced = false;
  let stopping: Promise<number> | undefined;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const metrics = createPrimaryMetrics({
    workers: () => listening.values(),
    ...(options.metricsTimeoutMs !== undefined ? { timeoutMs: options.metricsTimeoutMs } : {}),
    ...(sessions !== undefined ? { extra: () => sessions.metrics.registry.getMetricsAsJSON() } : {}),
  });

  const fork = () => {
    const worker = cluster.fork();
    log.debug({ worker: worker.id, workerPid: worker.process.pid }, "worker forked");
    return worker;
  };

  cluster.on("message", (worker, message) => {
    if (sessions?.handle(worker, message)) return;
    metrics.onMessage(worker, message);
  });
  // A dead worker is waited for no longer; its replacement starts with an empty near-cache.
  cluster.on("disconnect", (worker) => sessions?.peerGone(worker));

  cluster.on("listening", (worker, address) => {
    listening.set(worker.id, worker);
    log.info({ worker: worker.id, workerPid: worker.process.pid, port: address.port }, "worker listening");
    if (!announced && listening.size >= config.workers) {
      announced = true;
      log.info({ host: config.host, port: address.port, workers: config.workers }, "listening");
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    listening.delete(worker.id);
    sessions?.peerGone(worker);
    metrics.onExit(worker);
    if (stopping) {
      log.info({ worker: worker.id, workerPid: worker.process.pid, code, signal }, "worker stopped");
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && deaths[0]! < now - deathWindowMs) deaths.shift();
    if (deaths.length > maxDeaths) {
      log.fatal(
        { worker: worker.id, workerPid: worker.process.pid, code, signal, deaths: deaths.length, windowMs: deathWindowMs },
        "workers keep dying; giving up (see the workers' errors above)",
      );
      void shutdown("crash loop", 1);
      return;
    }
    const delayMs = Math.min(backoffBaseMs * 2 ** (deaths.length - 1), backoffMaxMs);
    log.error({ worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs: delayMs }, "worker died; restarting it");
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (!stopping) fork();
    }, delayMs);
    restartTimers.add(timer);
  });

  const shutdown = (reason: string, code: number): Promise<number> => {
    if (stopping) return stopping;
    for (const timer of restartTimers) clearTimeout(timer);
    restartTimers.clear();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    log.info({ reason, workers: workers.length, timeoutMs: config.shutdownTimeoutMs }, "shutting down");
    for (const worker of workers) {
      if (worker.isConnected()) {
        try {
          worker.send({ type: DRAIN });
          continue;
        } catch {
          // fall through: cannot be told, so it is killed
        }
      }
      worker.process.kill("SIGKILL");
    }
    stopping = new Promise<number>((resolve) => {
      const finish = () => {
        clearTimeout(deadline);
        log.info({ code }, "stopped");
        resolve(code);
      };
      const alive = () => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());
      const check = () => {
        if (alive().length === 0) finish();
      };
      const deadline = setTimeout(() => killStragglers("shutdown timeout"), config.shutdownTimeoutMs);
      killRest = (why: string) => killStragglers(why);
      function killStragglers(why: string) {
        const left = alive();
        if (left.length > 0) log.warn({ workerPids: left.map((w) => w!.process.pid), why }, "killing workers that did not stop");
        for (const worker of left) worker!.process.kill("SIGKILL");
      }
      cluster.on("exit", check);
      check();
    });
    stopping.then(resolveExit);
    return stopping;
  };
  let killRest: ((why: string) => void) | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      killRest?.(`second ${signal}`);
      return;
    }
    void shutdown(signal, 0);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  log.info({ workers: config.workers, backend: config.sessionBackend === "redis" ? config.redis?.kind : config.sessionBackend }, "starting");
  for (let i = 0; i < config.workers; i++) fork();
  return exited;
}
