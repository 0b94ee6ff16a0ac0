/**
 * Low-level pieces shared by the Sentinel and Cluster topology helpers: spawn one private
 * `redis-server` on a free loopback port in a temp dir, talk to it with a short-lived client, poll.
 * Every pid started here is tracked and SIGKILLed at process exit as a last resort; the topology
 * helpers stop their processes explicitly in `stop()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";

/** One redis-server (data node or sentinel) started by a test. */
export interface RedisProcess {
  readonly port: number;
  readonly pid: number;
  /** Its private working directory (config, logs, nodes.conf). */
  readonly dir: string;
  readonly role: "data" | "sentinel";
  /** False once it exited (killed or crashed). */
  readonly alive: boolean;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT...) to this process only. */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL and wait for the exit. Idempotent. */
  kill(): Promise<void>;
  /** The last lines of its log file, for failure messages. */
  logTail(lines?: number): string;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** A free TCP port on 127.0.0.1 (bound then released; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Free ports, distinct from each other. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A temp dir for one topology; removed by `removeDir`. */
export function makeTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `bangui-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Options of every data node: loopback only, no persistence, quick replication. */
export function dataNodeArgs(port: number, dir: string): string[] {
  return [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--dir", dir,
    "--logfile", join(dir, `redis-${port}.log`),
    "--save", "",
    "--appendonly", "no",
    "--protected-mode", "no",
    "--daemonize", "no",
    // Disk-based full sync: starts at once (diskless waits repl-diskless-sync-delay, and then holds the
    // write stream until the replica's first REPLCONF ACK, up to a second later: writes made then are not
    // on the replica yet, which a failover test would see as lost writes).
    "--repl-diskless-sync", "no",
    "--replica-announce-ip", "127.0.0.1",
  ];
}

/**
 * Spawns `redis-server` with `args` (a config file path may come first). Resolves once PING answers.
 */
export async function spawnRedis(
  args: string[],
  info: { port: number; dir: string; role: "data" | "sentinel"; logFile: string },
): Promise<RedisProcess> {
  const child = spawn("redis-server", args, { stdio: "ignore", cwd: info.dir });
  live.add(child);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once("error", () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  const proc: RedisProcess = {
    port: info.port,
    pid: child.pid ?? -1,
    dir: info.dir,
    role: info.role,
    get alive() {
      return !exited;
    },
    signal(sig) {
      if (!exited) child.kill(sig);
    },
    async kill() {
      if (!exited) {
        child.kill("SIGCONT"); // a stopped process still dies on SIGKILL, but be explicit
        child.kill("SIGKILL");
      }
      await exitPromise;
    },
    logTail(lines = 20) {
      try {
        return readFileSync(info.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch {
        return "(no log)";
      }
    },
  };
  try {
    await waitFor(`redis ${info.role} on ${info.port} answers PING`, 5000, async () => {
      if (exited) throw new Error(`redis-server on ${info.port} exited:\n${proc.logTail()}`);
      return (await command(info.port, ["PING"])) === "PONG";
    });
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}

/** Writes a config file into `dir` and returns its path. */
export function writeConfig(dir: string, name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

/**
 * Sends one command to 127.0.0.1:port on a fresh connection and closes it. Never queues, never
 * retries: a dead or stopped node rejects within `timeoutMs`.
 */
export async function command(port: number, argv: string[], timeoutMs = 1000): Promise<unknown> {
  return commands(port, [argv], timeoutMs);
}

/**
 * Sends several commands in order on one fresh connection (e.g. `READONLY` then a read on a cluster
 * replica) and returns the last reply.
 */
export async function commands(port: number, list: string[][], timeoutMs = 1000): Promise<unknown> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // No 2 s "stream still open" timer after disconnect() keeping the test process alive.
    disconnectTimeout: 0,
  });
  client.on("error", () => {
    // reported by the rejected command
  });
  try {
    await client.connect();
    let reply: unknown;
    for (const [name, ...rest] of list) reply = await client.call(name!, ...rest);
    return reply;
  } finally {
    client.disconnect();
  }
}

/** INFO <section> parsed into a map. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = String(await command(port, ["INFO", section]));
  const map = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) map.set(line.slice(0, i), line.slice(i + 1));
  }
  return map;
}

/** Polls `check` (errors count as "not yet") until it returns true, or throws after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
      if (err instanceof Error && /exited:/.test(err.message)) throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${last ? `: ${(last as Error).message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
