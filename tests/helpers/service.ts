/**
 * The BUILT service as a real process for end-to-end tests: `node dist/src/main.js` with a clean
 * environment (no BANGUI_* inherited), BANGUI_PORT=0 (the primary logs the port every worker shares),
 * stdout and stderr captured, stopped with SIGTERM (awaiting the exit) or killed. Every process started
 * here is SIGKILLed at the end of the jest worker as a last resort; tests stop theirs in afterAll.
 * Build first: `npx tsc -p tsconfig.build.json` (`npm test` does it in pretest).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { hashPassword } from "../../src/auth/passwords";

export const ROOT = resolve(__dirname, "..", "..");
/**
 * How long a helper waits for something that will happen (a start, a log line, a condition polled): only a
 * hang should ever reach it. Generous on purpose: the suite may run on a loaded machine, and a wait that
 * stands for "surely done by now" makes a slow machine look like a bug.
 */
export const PATIENCE_MS = 120_000;
export const MAIN_JS = join(ROOT, "dist", "src", "main.js");
export const USERS_CLI_JS = join(ROOT, "dist", "src", "auth", "users-cli.js");

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

function assertBuilt(file: string): void {
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -p tsconfig.build.json)`);
}

/** The environment of a child: PATH/HOME and such from ours, no BANGUI_* or NODE_ENV, then `env`. */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("BANGUI_") && k !== "NODE_ENV" && !k.startsWith("JEST") && v !== undefined) out[k] = v;
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** A temp dir for one test file. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `bangui-e2e-${label}-`));
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Writes a users file with cheap scrypt hashes (N=1024: the parameters live in the hash string, so the
 * service verifies them as they are), so tests can log in hundreds of times quickly.
 */
export async function writeUsersFile(path: string, users: Record<string, string>): Promise<void> {
  const entries: Record<string, unknown> = {};
  for (const [name, password] of Object.entries(users)) {
    entries[name] = {
      passwordHash: await hashPassword(password, { N: 1024, r: 8, p: 1 }),
      credentialId: `cred-${name}-${Math.random().toString(36).slice(2)}`,
      updatedAt: new Date().toISOString(),
    };
  }
  writeFileSync(path, `${JSON.stringify({ version: 1, users: entries }, null, 2)}\n`, { mode: 0o600 });
}

/** One JSON log line of the service. */
export type LogLine = Record<string, unknown> & { msg?: string; pid?: number; component?: string };

/** Options of `startService`. */
export interface StartServiceOptions {
  /** BANGUI_* variables (BANGUI_PORT defaults to 0, BANGUI_HOST to 127.0.0.1). */
  env?: Record<string, string | undefined>;
  /** How long to wait for the "listening" line and /healthz. @default PATIENCE_MS */
  startTimeoutMs?: number;
}

/** Exit status of a child. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running service (its primary process). */
export interface ServiceHandle {
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Every stdout line that parses as JSON (the pino logs of the primary and the workers). */
  logs(): LogLine[];
  /** Resolves with the first log line (past or future) matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Pids of the workers currently listening (from the primary's logs). */
  workerPids(): number[];
  readonly exited: Promise<ExitStatus>;
  /** Sends SIGTERM once (a second SIGTERM would make the primary kill its workers at once). */
  terminate(): void;
  /** SIGTERM (once), then waits for the exit; rejects when it has not exited within `timeoutMs` (then kills it). */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL (the workers exit when their IPC channel closes) and wait. Idempotent. */
  kill(): Promise<void>;
}

/** Runs a node script to its end (bounded by `timeoutMs`, then SIGKILL) and returns what it printed. */
export function runNode(
  script: string,
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<ExitStatus & { stdout: string; stderr: string }> {
  assertBuilt(script);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: childEnv(options.env ?? {}), stdio: "pipe" });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? PATIENCE_MS);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      // 'exit' may come before the pipes are drained.
      setImmediate(() => resolvePromise({ code, signal, stdout, stderr }));
    });
    child.stdin.end(options.input ?? "");
  });
}

/** `users-cli.js <args>` with the given environment and stdin. */
export function runUsersCli(args: string[], env: Record<string, string | undefined>, input = "") {
  return runNode(USERS_CLI_JS, args, { env, input });
}

/** Starts the built service and resolves once every worker listens and /healthz answers 200. */
export async function startService(options: StartServiceOptions = {}): Promise<ServiceHandle> {
  assertBuilt(MAIN_JS);
  if (["warn", "error", "fatal", "silent"].includes(options.env?.BANGUI_LOG_LEVEL ?? "info")) {
    throw new Error("startService reads the port from the primary's info-level \"listening\" line: use BANGUI_LOG_LEVEL info or lower");
  }
  const env = childEnv({ BANGUI_PORT: "0", BANGUI_HOST: "127.0.0.1", ...options.env });
  const child = spawn(process.execPath, [MAIN_JS], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let stdout = "";
  let stderr = "";
  let partial = "";
  const lines: LogLine[] = [];
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf("\n")) !== -1) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!text.startsWith("{")) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!;
        if (w.pred(line)) {
          waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<ExitStatus>((res) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      setImmediate(() => res({ code, signal }));
    }),
  );
  const describe = () => `service pid ${child.pid}\n--- stdout ---\n${stdout.slice(-3000)}\n--- stderr ---\n${stderr.slice(-3000)}`;

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = PATIENCE_MS) => {
    const past = lines.find(pred);
    if (past) return Promise.resolve(past);
    return new Promise<LogLine>((res, rej) => {
      const waiter = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          res(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        rej(new Error(`no matching log line within ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };

  let terminated = false;
  const terminate = () => {
    if (terminated || child.exitCode !== null || child.signalCode !== null) return;
    terminated = true;
    child.kill("SIGTERM");
  };

  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };

  const startTimeoutMs = options.startTimeoutMs ?? PATIENCE_MS;
  let listening: LogLine;
  try {
    listening = await Promise.race([
      waitForLog((l) => l.component === "primary" && l.msg === "listening", startTimeoutMs),
      exited.then((s) => {
        throw new Error(`the service exited before listening (code ${s.code}, signal ${s.signal})\n${describe()}`);
      }),
    ]);
  } catch (err) {
    await kill();
    throw err;
  }
  const port = Number(listening.port);
  const url = `http://127.0.0.1:${port}`;
  const health = await http(url, "GET", "/healthz").catch((err: Error) => ({ status: 0, error: err.message }));
  if (health.status !== 200) {
    await kill();
    throw new Error(`GET /healthz answered ${health.status}\n${describe()}`);
  }

  return {
    pid: child.pid!,
    port,
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => [...lines],
    waitForLog,
    workerPids() {
      const alive = new Map<number, number>(); // worker id -> pid
      for (const l of lines) {
        if (l.component !== "primary") continue;
        if (l.msg === "worker listening") alive.set(Number(l.worker), Number(l.workerPid));
        if (l.msg === "worker died; restarting it" || l.msg === "worker stopped") alive.delete(Number(l.worker));
      }
      return [...alive.values()];
    },
    exited,
    terminate,
    async stop(timeoutMs = PATIENCE_MS) {
      terminate();
      let timer: NodeJS.Timeout | undefined;
      const status = await Promise.race([
        exited,
        new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (status === "timeout") {
        await kill();
        throw new Error(`the service did not exit within ${timeoutMs} ms of SIGTERM\n${describe()}`);
      }
      return status;
    },
    kill,
  };
}

/** An HTTP answer, body parsed as JSON when it is JSON. */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Options of `http`. */
export interface HttpOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent as the `bangui_session` cookie. */
  cookie?: string;
  /** @default false: a fresh connection per request (Connection: close), so every worker gets some */
  agent?: Agent | false;
  /** @default PATIENCE_MS */
  timeoutMs?: number;
}

/** One HTTP request to the service over loopback. */
export function http(baseUrl: string, method: string, path: string, options: HttpOptions = {}): Promise<HttpAnswer> {
  const url = new URL(path, baseUrl);
  const headers: Record<string, string> = { ...options.headers };
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    payload = Buffer.from(typeof options.body === "string" ? options.body : JSON.stringify(options.body));
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(payload.length);
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie !== undefined) headers.cookie = `bangui_session=${options.cookie}`;
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: options.agent ?? false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let json: unknown;
          try {
            json = text.length > 0 ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? PATIENCE_MS, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/**
 * Logs in and returns the token from the Set-Cookie header (throws unless 200). For a login that is meant to
 * succeed: a 503 (the backend slower than the command timeout on a loaded machine, or still reconnecting after
 * a restart) is asked again until another answer comes, within PATIENCE_MS.
 */
export async function login(baseUrl: string, username: string, password: string): Promise<string> {
  const giveUpAt = Date.now() + PATIENCE_MS;
  let res = await http(baseUrl, "POST", "/api/auth/login", { body: { username, password } });
  while (res.status === 503 && Date.now() < giveUpAt) {
    await new Promise((r) => setTimeout(r, 50));
    res = await http(baseUrl, "POST", "/api/auth/login", { body: { username, password } });
  }
  if (res.status !== 200) throw new Error(`login of ${username} answered ${res.status}: ${res.text}`);
  const token = sessionCookie(res)?.value;
  if (token === undefined) throw new Error("login answered 200 without a bangui_session cookie");
  return token;
}

/** The `bangui_session` Set-Cookie of an answer: its value and its attributes (lower-cased names). */
export function sessionCookie(res: HttpAnswer): { value: string; attributes: Map<string, string>; raw: string } | undefined {
  const raw = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith("bangui_session="));
  if (raw === undefined) return undefined;
  const [first, ...rest] = raw.split(";");
  const value = first!.slice("bangui_session=".length);
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const [k, ...v] = part.trim().split("=");
    attributes.set(k!.toLowerCase(), v.join("="));
  }
  return { value, attributes, raw };
}

/** Polls `check` every `intervalMs` until it returns true; false after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = PATIENCE_MS, intervalMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(runners);
  return out;
}

/** Starts several services in parallel; if one fails, stops the others and rethrows. */
export async function startServices<const T extends readonly StartServiceOptions[]>(
  list: T,
): Promise<{ -readonly [K in keyof T]: ServiceHandle }> {
  const results = await Promise.allSettled(list.map((o) => startService(o)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(results.map((r) => (r.status === "fulfilled" ? r.value.kill() : undefined)));
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<ServiceHandle>).value) as { -readonly [K in keyof T]: ServiceHandle };
}

/** Stops services (SIGTERM, then SIGKILL if it hangs) without throwing: for afterAll. */
export async function stopAll(services: Array<ServiceHandle | undefined>): Promise<void> {
  await Promise.all(services.map((s) => s?.stop().catch(() => s.kill())));
}
