/**
 * The service instances under test: the BUILT service (`node dist/src/main.js`, as
 * tests/helpers/service.ts starts it) on fixed free loopback ports, so an instance restarted comes back
 * at the same address. Each instance's output goes to `<outDir>/instance-<n>.log` (not kept in memory:
 * a 10-minute run logs every request); only the primary's lifecycle lines are parsed, to know the
 * workers' pids and when the instance listens.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { childEnv, MAIN_JS, ROOT } from "../tests/helpers/service";
import { freePorts } from "../tests/helpers/redis-process";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});

export interface Instance {
  readonly index: number;
  readonly port: number;
  readonly url: string;
  /** Pids of the workers listening now. */
  workerPids(): number[];
  /** Resolves when a worker not in `known` listens. */
  waitForNewWorker(known: readonly number[], timeoutMs: number): Promise<number>;
  /** SIGTERM (the service drains), wait for the exit, start again on the same port. */
  restart(): Promise<void>;
  /** SIGTERM and wait (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>;
}

export interface FleetOptions {
  count: number;
  env: Record<string, string>;
  outDir: string;
  startTimeoutMs?: number;
}

export async function startFleet(o: FleetOptions): Promise<Instance[]> {
  const ports = await freePorts(o.count);
  const list: Instance[] = [];
  try {
    for (let i = 0; i < o.count; i++) list.push(await startInstance(i, ports[i]!, o));
  } catch (err) {
    await Promise.all(list.map((x) => x.stop(2000)));
    throw err;
  }
  return list;
}

async function startInstance(index: number, port: number, o: FleetOptions): Promise<Instance> {
  const log: WriteStream = createWriteStream(join(o.outDir, `instance-${index}.log`), { flags: "a" });
  const workers = new Map<number, number>(); // worker id -> pid
  let listeners: Array<() => void> = [];
  let child: ChildProcess;
  let exited: Promise<void>;
  let listening = false;

  const spawnIt = async (): Promise<void> => {
    listening = false;
    workers.clear();
    const env = childEnv({ ...o.env, BANGUI_PORT: String(port), BANGUI_HOST: "127.0.0.1" });
    child = spawn(process.execPath, [MAIN_JS], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    exited = new Promise((r) => child.once("exit", () => (live.delete(child), r())));
    let partial = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      log.write(chunk);
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf("\n")) !== -1) {
        const text = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (!text.includes('"component":"primary"')) continue;
        try {
          const l = JSON.parse(text) as Record<string, unknown>;
          if (l.msg === "worker listening") workers.set(Number(l.worker), Number(l.workerPid));
          if (l.msg === "worker died; restarting it" || l.msg === "worker stopped") workers.delete(Number(l.worker));
          if (l.msg === "listening") listening = true;
        } catch {
          continue;
        }
        const ls = listeners;
        listeners = [];
        ls.forEach((f) => f());
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => log.write(d));
    await waitUntil(() => listening, o.startTimeoutMs ?? 120_000, `instance ${index} listens on ${port}`, exited);
  };

  const waitUntil = (cond: () => boolean, timeoutMs: number, what: string, dead?: Promise<void>): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what} (see instance-${index}.log)`)), timeoutMs);
      const test = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else listeners.push(test);
      };
      void dead?.then(() => {
        clearTimeout(timer);
        reject(new Error(`instance ${index} exited before ${what} (see instance-${index}.log)`));
      });
      test();
    });

  const stop = async (timeoutMs = 15_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(t);
  };

  await spawnIt();
  return {
    index,
    port,
    url: `http://127.0.0.1:${port}`,
    workerPids: () => [...workers.values()],
    async waitForNewWorker(known, timeoutMs) {
      await waitUntil(() => [...workers.values()].some((p) => !known.includes(p)), timeoutMs, "a new worker listens");
      return [...workers.values()].find((p) => !known.includes(p))!;
    },
    async restart() {
      await stop();
      await spawnIt();
    },
    stop,
  };
}
