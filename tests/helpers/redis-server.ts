/**
 * A private Redis for one test file: `redis-server` on 127.0.0.1 and a free port, in a temp dir, ready
 * when PING answers. Fallback when the binary is missing: `REDIS_URL` (no process control); otherwise an Error
 * saying how to get Redis.
 * Never the machine's shared instance on 6379.
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  dataNodeArgs,
  freePort,
  makeTempDir,
  spawnRedis,
  type RedisProcess,
} from "./redis-process";

export { freePort };

/** Options of `startRedisServer`. */
export interface RedisServerOptions {
  /** AOF persistence, so `restart()` keeps the data. @default false */
  appendonly?: boolean;
  /** Extra redis-server arguments (e.g. ["--replicaof", "127.0.0.1", "6390"]). @default [] */
  args?: string[];
  /** @default a free port */
  port?: number;
  /** @default a new temp dir */
  dir?: string;
}

/** A running Redis that the test owns. */
export interface RedisServerHandle {
  readonly host: string;
  readonly port: number;
  /** redis://host:port */
  readonly url: string;
  /** -1 when not a local process. */
  readonly pid: number;
  readonly dir: string;
  /** Stops the server and waits for the exit (removes the temp dir it created). Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal to the process. @default "SIGKILL" (and waits for the exit) */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and dir (AOF survives). */
  restart(): Promise<void>;
  /** SIGSTOP: the server stops answering (connections stay open). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
}

const NEEDS_LOCAL = "needs a local redis-server (install it: apt-get install redis-server); REDIS_URL gives no process control";

function hasRedisBinary(): boolean {
  const r = spawnSync("redis-server", ["--version"], { stdio: "ignore" });
  return r.status === 0;
}

/** Starts a private Redis (see module doc for the fallbacks). */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  if (hasRedisBinary()) return startLocal(opts);
  const envUrl = process.env.REDIS_URL;
  if (envUrl !== undefined && envUrl !== "") return fromUrl(envUrl);
  throw new Error(
    "Redis tests need Redis: install redis-server (apt-get install redis-server), " +
      "or set REDIS_URL=redis://127.0.0.1:<port> to a Redis the tests may write to.",
  );
}

async function startLocal(opts: RedisServerOptions): Promise<RedisServerHandle> {
  const port = opts.port ?? (await freePort());
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir(`redis-${port}`);
  const args = [
    ...dataNodeArgs(port, dir).filter((_, i, all) => !(all[i - 1] === "--appendonly" || all[i] === "--appendonly")),
    "--appendonly", opts.appendonly ? "yes" : "no",
    ...(opts.appendonly ? ["--appendfsync", "always"] : []),
    ...(opts.args ?? []),
  ];
  const logFile = join(dir, `redis-${port}.log`);
  let proc: RedisProcess = await spawnRedis(args, { port, dir, role: "data", logFile });
  let stopped = false;
  const handle: RedisServerHandle = {
    host: "127.0.0.1",
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return proc.pid;
    },
    dir,
    async stop() {
      if (proc.alive) {
        proc.signal("SIGCONT");
        await proc.kill();
      }
      if (!stopped && ownsDir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      stopped = true;
    },
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (signal === "SIGKILL") await proc.kill();
      else proc.signal(signal);
    },
    async restart() {
      if (proc.alive) await proc.kill();
      proc = await spawnRedis(args, { port, dir, role: "data", logFile });
    },
    pause() {
      proc.signal("SIGSTOP");
    },
    resume() {
      proc.signal("SIGCONT");
    },
  };
  return handle;
}

function fromUrl(url: string): RedisServerHandle {
  const u = new URL(url);
  const noControl = () => {
    throw new Error(`this test ${NEEDS_LOCAL}`);
  };
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    url,
    pid: -1,
    dir: "",
    async stop() {},
    async kill() {
      noControl();
    },
    async restart() {
      noControl();
    },
    pause: noControl,
    resume: noControl,
  };
}

