"use strict";
/**
 * `npm run bench:ipc`: the ipc backend (no Redis) next to Redis with the near-cache, both with 2 workers,
 * side by side in one run:
 *  1. starts a private redis-server on a free loopback port in a temp dir, and the two services;
 *  2. GET /api/auth/session with autocannon, interleaved rounds (ipc, redis, ipc, redis, ...), median;
 *  3. logout latency: per round and target, LOGOUTS sessions are logged in and read on every worker
 *     (so every near-cache holds them), then logged out one at a time, each timed; p50 / p99 over all.
 *  4. prints the table and replaces its own section of docs/BENCHMARKS.md (BENCH_NO_WRITE=1: leave it).
 * Everything it starts is stopped at the end (and on a hard deadline). BENCH_ROUNDS, BENCH_DURATION_S,
 * BENCH_CONNECTIONS, BENCH_LOGOUTS override the defaults.
 */
const { spawn, spawnSync } = require("node:child_process");
const { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const autocannon = require("autocannon");

const ROOT = path.join(__dirname, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S || 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const LOGOUTS = Number(process.env.BENCH_LOGOUTS || 100);
const WORKERS = 2;
const PASSWORD = "bench-password-not-secret";
const HARD_DEADLINE_MS = 600_000;
const BEGIN = "<!-- bench:ipc begin -->";
const END = "<!-- bench:ipc end -->";

const children = new Set();
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-bench-ipc-"));
process.on("exit", () => {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  rmSync(tmp, { recursive: true, force: true });
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  console.error("bench:ipc: hard deadline reached, stopping everything");
  process.exit(2);
}, HARD_DEADLINE_MS).unref();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** BENCH_LOG_DIR=<dir>: each child's stdout (the service's logs) goes to <dir>/<name>.log. */
function start(cmd, args, env, name) {
  const out = process.env.BENCH_LOG_DIR ? require("node:fs").openSync(path.join(process.env.BENCH_LOG_DIR, `${name}.log`), "w") : "ignore";
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", out, "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.on("exit", (code) => {
    children.delete(child);
    if (code && !child.stopping) console.error(`bench:ipc: ${name} exited with ${code}\n${stderr}`);
  });
  children.add(child);
  return child;
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.stopping = true;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

async function waitFor(fn, what, ms = 90_000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {}
    if (Date.now() > end) throw new Error(`bench:ipc: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One request on a fresh connection (so the cluster spreads them over its workers). */
function request(port, method, urlPath, { cookie, body } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { connection: "close" };
    if (cookie) headers.cookie = cookie;
    if (payload) Object.assign(headers, { "content-type": "application/json", "content-length": String(payload.length) });
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

async function login(port) {
  const res = await request(port, "POST", "/api/auth/login", { body: { username: "bench", password: PASSWORD } });
  if (res.statusCode !== 200) throw new Error(`bench:ipc: login on ${port} answered ${res.statusCode}`);
  return String(res.headers["set-cookie"]).split(";")[0];
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/**
 * Logs in `n` sessions, reads each on every worker, then logs them out one at a time: ms per logout, and
 * the answers that were not 200 (checks) or 204 (logouts), by status (a loaded machine can push a request
 * past the command timeout: 503, fail closed; counted and reported, never hidden).
 */
async function logoutLatencies(port, n, bad) {
  const note = (what, status) => (bad[`${what} ${status}`] = (bad[`${what} ${status}`] || 0) + 1);
  const logins = await mapLimit(Array.from({ length: n }), 4, () =>
    login(port).catch((err) => {
      note("login", (/answered (\d+)/.exec(err.message) || [])[1] || "error");
      return undefined;
    }),
  );
  const cookies = logins.filter((c) => c !== undefined);
  await mapLimit(cookies, 8, async (cookie) => {
    for (let i = 0; i < 2 * WORKERS; i++) {
      const res = await request(port, "GET", "/api/auth/session", { cookie });
      if (res.statusCode !== 200) note("check", res.statusCode);
    }
  });
  const ms = [];
  for (const cookie of cookies) {
    const t0 = process.hrtime.bigint();
    const res = await request(port, "POST", "/api/auth/logout", { cookie });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.statusCode !== 204) note("logout", res.statusCode);
  }
  return ms;
}

async function main() {
  const t0 = Date.now();
  const redisPort = await freePort();
  const redis = start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], {}, "redis-server");
  await waitFor(() => new Promise((resolve) => {
    const sock = net.connect(redisPort, "127.0.0.1");
    sock.on("error", () => resolve(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      sock.destroy();
    });
  }), "redis-server");

  const usersFile = path.join(tmp, "users.json");
  const add = spawnSync(process.execPath, ["dist/src/auth/users-cli.js", "add", "bench"], {
    cwd: ROOT,
    input: `${PASSWORD}\n`,
    env: { ...process.env, BANGUI_USERS_FILE: usersFile },
  });
  if (add.status !== 0) throw new Error(`bench:ipc: users add failed: ${add.stderr}`);

  const common = {
    BANGUI_WORKERS: String(WORKERS),
    BANGUI_HOST: "127.0.0.1",
    BANGUI_USERS_FILE: usersFile,
    BANGUI_LOGIN_MAX_PER_IP: "1000000",
    NODE_ENV: "production",
    BANGUI_COOKIE_SECURE: "false",
    BANGUI_LOG_LEVEL: "warn",
  };
  const targets = [
    { key: "ipc", label: "ipc backend (primary-held, near-cache per worker), no Redis", env: { BANGUI_SESSION_BACKEND: "ipc" } },
    { key: "redis", label: "Redis with the near-cache", env: { BANGUI_REDIS_URL: `redis://127.0.0.1:${redisPort}`, BANGUI_NEAR_CACHE: "on", BANGUI_KEY_PREFIX: "bipc:" } },
  ];
  for (const t of targets) {
    t.port = await freePort();
    t.child = start(process.execPath, ["dist/src/main.js"], { ...common, ...t.env, BANGUI_PORT: String(t.port) }, t.key);
    t.runs = [];
    t.logouts = [];
    t.logoutBad = {};
  }
  for (const t of targets) {
    await waitFor(async () => (await request(t.port, "GET", "/healthz")).statusCode === 200, `${t.key} to listen`);
    t.cookie = await login(t.port);
  }
  console.log(`bench:ipc: ${ROUNDS} rounds; session checks ${DURATION_S} s x ${CONNECTIONS} connections; ${LOGOUTS} logouts per round`);

  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const url = `http://127.0.0.1:${t.port}/api/auth/session`;
      await autocannon({ url, headers: { cookie: t.cookie }, connections: CONNECTIONS, duration: 1 });
      const r = await autocannon({ url, headers: { cookie: t.cookie }, connections: CONNECTIONS, duration: DURATION_S });
      const bad = r.non2xx + r.errors + r.timeouts;
      t.runs.push({ rps: r.requests.total / DURATION_S, p50: r.latency.p50, p99: r.latency.p99, bad });
      const lat = await logoutLatencies(t.port, LOGOUTS, t.logoutBad);
      t.logouts.push(...lat);
      console.log(
        `  round ${round} ${t.key.padEnd(5)}: ${Math.round(r.requests.total / DURATION_S)} req/s p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms${bad ? ` (${bad} bad!)` : ""}; ` +
          `logout p50 ${quantile(lat, 0.5).toFixed(2)} ms p99 ${quantile(lat, 0.99).toFixed(2)} ms`,
      );
    }
  }
  for (const t of targets) await stop(t.child);
  await stop(redis);

  const [ipc, red] = targets.map((t) => ({
    ...t,
    rps: median(t.runs.map((r) => r.rps)),
    p50: median(t.runs.map((r) => r.p50)),
    p99: median(t.runs.map((r) => r.p99)),
    bad: t.runs.reduce((n, r) => n + r.bad, 0),
    lp50: quantile(t.logouts, 0.5),
    lp99: quantile(t.logouts, 0.99),
  }));
  const load = os.loadavg().map((x) => x.toFixed(2)).join(" / ");
  const lines = [
    BEGIN,
    "## ipc backend vs Redis near-cache (`npm run bench:ipc`)",
    "",
    `- command: \`npm run bench:ipc\` (bench/ipc.js), ${WORKERS} workers each, ${ROUNDS} interleaved rounds; session checks: ` +
      `${DURATION_S} s per target per round after 1 s warm-up, ${CONNECTIONS} connections, median of rounds; logouts: ${LOGOUTS} per ` +
      `target per round, each session first read ${2 * WORKERS} times (fresh connections, so every worker's near-cache holds it), ` +
      `then logged out one at a time; p50/p99 over all ${ROUNDS * LOGOUTS}`,
    `- machine: ${os.availableParallelism ? os.availableParallelism() : os.cpus().length} CPUs, node ${process.version}, load average at the end ${load} ` +
      "(other work shares the machine: compare the rows, not absolute numbers); total " + `${((Date.now() - t0) / 1000).toFixed(0)} s`,
    "",
    "| backend | GET /api/auth/session req/s | p50 ms | p99 ms | req/s per round | logout p50 ms | logout p99 ms | not 200/204 in the logout runs |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of [ipc, red]) {
    lines.push(
      `| ${r.label} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.runs.map((x) => Math.round(x.rps)).join(" / ")}${r.bad ? ` (${r.bad} bad!)` : ""} | ${r.lp50.toFixed(2)} | ${r.lp99.toFixed(2)} | ${Object.entries(r.logoutBad).map(([k, v]) => `${v} x ${k}`).join(", ") || "none"} |`,
    );
  }
  lines.push("");
  lines.push(`ipc / Redis near-cache: session checks ${(ipc.rps / red.rps).toFixed(2)}x req/s; logout p50 ${(ipc.lp50 / red.lp50).toFixed(2)}x, p99 ${(ipc.lp99 / red.lp99).toFixed(2)}x.`);
  lines.push(END);
  const section = lines.join("\n");
  console.log(`\n${section}`);
  if (!process.env.BENCH_NO_WRITE) {
    const file = path.join(ROOT, "docs", "BENCHMARKS.md");
    const text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
    const a = text.indexOf(BEGIN);
    const b = text.indexOf(END);
    const next = a !== -1 && b > a ? text.slice(0, a) + section + text.slice(b + END.length) : `${text.trimEnd()}\n\n${section}\n`;
    writeFileSync(file, next);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
