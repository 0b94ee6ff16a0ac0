/**
 * A reverse proxy (nginx, Caddy) as a child process of the test: own config, pid and log files in a temp
 * dir, a free loopback port, ready once it answers HTTP, stopped by its PID. The machine's own nginx or
 * Caddy services (started by apt) play no part.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ProxyProcess {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** The proxy's output and error log so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});

export function proxyTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `bangui-${label}-`));
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/_bangui/style.css", method: "GET", agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.setTimeout(2000, () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Spawns `command args` and waits (polling, bounded by `timeoutMs`) until `port` answers HTTP. */
export async function spawnProxy(
  label: string,
  command: string,
  args: string[],
  options: { port: number; dir: string; env?: NodeJS.ProcessEnv; logFiles?: string[]; timeoutMs?: number },
): Promise<ProxyProcess> {
  const child = spawn(command, args, { cwd: options.dir, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (output = (output + d).slice(-20_000)));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (output = (output + d).slice(-20_000)));
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      resolve();
    }),
  );
  const logs = () => {
    let text = output;
    for (const file of options.logFiles ?? []) {
      try {
        text += `\n--- ${file} ---\n${readFileSync(file, "utf8").slice(-10_000)}`;
      } catch {
        // not written yet
      }
    }
    return text;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(options.dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = logs();
      await stop();
      throw new Error(`${label} exited before answering\n${text}`);
    }
    if (await answers(options.port)) break;
    if (Date.now() > deadline) {
      const text = logs();
      await stop();
      throw new Error(`${label} did not answer on port ${options.port}\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port: options.port, pid: child.pid!, dir: options.dir, logs, stop };
}
