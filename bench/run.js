"use strict";
/**
 * `npm run bench`: builds (npm script), then
 *  1. starts a private redis-server on a free loopback port in a temp dir;
 *  2. starts every HTTP target with 1 and 2 workers: this service (near-cache on / off), the peer
 *     (express-session + connect-redis 8 on ioredis, connect-redis 9 on node-redis) and a bare Express route;
 *  3. logs in once per target, then drives GET /api/auth/session with autocannon, interleaved over rounds
 *     (A B C ... A B C ...) so machine drift cancels; reports the median of the rounds;
 *  4. measures login req/s (scrypt-bound) and the micro-benchmark of the cache itself;
 *  5. prints the table and writes docs/BENCHMARKS.md.
 * Everything it starts is stopped at the end (and on a hard deadline). BENCH_ROUNDS, BENCH_DURATION_S,
 * BENCH_CONNECTIONS override the defaults; BENCH_NO_WRITE=1 leaves docs/ alone.
 */
const { spawn, spawnSync } = require("node:child_process");
const { mkdtempSync, rmSync, writeFileSync, readFileSync } = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const autocannon = require("autocannon");
const { micro } = require("./micro");

const ROOT = path.join(__dirname, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S || 4);
const WARMUP_S = 1;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const HARD_DEADLINE_MS = 290_000;
const PASSWORD = "bench-password-not-secret";

const children = new Set();
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-bench-"));

function cleanup() {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  children.clear();
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  console.error("bench: hard deadline reached, stopping everything");
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

function start(cmd, args, env, name) {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  child.on("exit", (code) => {
    children.delete(child);
    if (code && code !== 0 && !child.stopping) console.error(`bench: ${name} exited with ${code}\n${stderr}`);
  });
  children.add(child);
  return child;
}

async function waitFor(fn, what, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {}
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pingRedis(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.setTimeout(500, () => sock.destroy());
    sock.on("error", () => resolve(false));
    sock.on("close", () => resolve(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      sock.destroy();
    });
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.stopping = true;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(t);
}

function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}

async function login(port) {
  const res = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`bench: login on port ${port} answered ${res.status}`);
  const set = res.headers.get("set-cookie");
  const cookie = set ? set.split(";")[0] : "";
  // express-session may send the body before its store write completes: allow the first check a moment.
  let check;
  for (let i = 0; i < 20; i++) {
    check = await fetch(`http://127.0.0.1:${port}/api/auth/session`, { headers: { cookie } });
    if (check.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (check.status !== 200) throw new Error(`bench: session check on port ${port} answered ${check.status} (cookie ${cookie.split("=")[0]}, ${set ? set.length : 0} chars)`);
  return cookie;
}

function cannon(opts) {
  return autocannon({ connections: CONNECTIONS, ...opts });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const t0 = Date.now();
  // 1. Redis
  const redisPort = await freePort();
  const redisProc = start(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
    {},
    "redis-server",
  );
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await waitFor(() => pingRedis(redisPort), "redis-server to answer PING");

  // Users file for this service.
  const usersFile = path.join(tmp, "users.json");
  const add = spawnSync(process.execPath, ["dist/src/auth/users-cli.js", "add", "bench"], {
    cwd: ROOT,
    input: `${PASSWORD}\n`,
    env: { ...process.env, BANGUI_USERS_FILE: usersFile },
  });
  if (add.status !== 0) throw new Error(`bench: users add failed: ${add.stderr}`);

  // 2. Targets
  const kinds = [
    { key: "near", label: "this service, near-cache on" },
    { key: "nonear", label: "this service, near-cache off" },
    { key: "peer8", label: "peer: express-session + connect-redis 8 (ioredis)" },
    { key: "peer9", label: "peer: express-session + connect-redis 9 (node-redis)" },
    { key: "bare", label: "bare Express route (no session)" },
  ];
  const targets = [];
  for (const workers of [1, 2]) {
    for (const kind of kinds) {
      const port = await freePort();
      let child;
      if (kind.key === "near" || kind.key === "nonear") {
        child = start(
          process.execPath,
          ["dist/src/main.js"],
          {
            BANGUI_REDIS_URL: redisUrl,
            BANGUI_WORKERS: String(workers),
            BANGUI_HOST: "127.0.0.1",
            BANGUI_PORT: String(port),
            BANGUI_USERS_FILE: usersFile,
            BANGUI_KEY_PREFIX: `b${kind.key}${workers}:`,
            BANGUI_NEAR_CACHE: kind.key === "near" ? "on" : "off",
            NODE_ENV: "production",
            BANGUI_COOKIE_SECURE: "false",
          },
          `${kind.key}/${workers}`,
        );
      } else {
        child = start(
          process.execPath,
          [kind.key === "bare" ? "bench/bare-app.js" : "bench/peer-app.js"],
          {
            PORT: String(port),
            WORKERS: String(workers),
            REDIS_URL: redisUrl,
            PEER_CLIENT: kind.key === "peer9" ? "node-redis" : "ioredis",
            NODE_ENV: "production",
          },
          `${kind.key}/${workers}`,
        );
      }
      targets.push({ ...kind, workers, port, child, runs: [] });
    }
  }
  for (const t of targets) {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${t.port}/healthz`)).status === 200, `${t.key}/${t.workers} to listen`);
    t.cookie = await login(t.port).catch((err) => {
      throw new Error(`${t.key}/${t.workers}: ${err.message}`);
    });
  }
  // With 2 workers, every worker must have seen the session once (near-cache filled) before measuring.
  console.log(`bench: ${targets.length} targets up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds of ${DURATION_S} s, ${CONNECTIONS} connections`);

  // 3. Interleaved rounds
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const url = `http://127.0.0.1:${t.port}/api/auth/session`;
      await cannon({ url, headers: { cookie: t.cookie }, duration: WARMUP_S });
      const r = await cannon({ url, headers: { cookie: t.cookie }, duration: DURATION_S });
      const bad = r.non2xx + r.errors + r.timeouts;
      t.runs.push({ rps: r.requests.total / DURATION_S, p50: r.latency.p50, p99: r.latency.p99, bad });
      process.stdout.write(
        `  round ${round} ${t.key.padEnd(6)} w=${t.workers}: ${Math.round(r.requests.total / DURATION_S)} req/s p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms${bad ? ` (${bad} non-2xx/errors!)` : ""}\n`,
      );
    }
  }

  // 4a. Login (scrypt-bound by design): this service, near-cache on.
  const loginRuns = [];
  for (const t of targets.filter((x) => x.key === "near")) {
    const r = await cannon({
      url: `http://127.0.0.1:${t.port}/api/auth/login`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "bench", password: PASSWORD }),
      duration: 3,
      connections: 8,
    });
    loginRuns.push({ workers: t.workers, rps: r.requests.total / 3, p50: r.latency.p50, p99: r.latency.p99, bad: r.non2xx + r.errors });
  }

  for (const t of targets) await stop(t.child);

  // 4b. Micro-benchmark of the cache (this process, servers stopped).
  const microResult = await micro(redisUrl);
  await stop(redisProc);

  // 5. Report
  const rows = [];
  for (const t of targets) {
    rows.push({
      key: t.key,
      label: t.label,
      workers: t.workers,
      rps: median(t.runs.map((r) => r.rps)),
      p50: median(t.runs.map((r) => r.p50)),
      p99: median(t.runs.map((r) => r.p99)),
      bad: t.runs.reduce((n, r) => n + r.bad, 0),
      rounds: t.runs.map((r) => Math.round(r.rps)),
    });
  }
  const find = (key, w) => rows.find((r) => r.key === key && r.workers === w);
  for (const r of rows) {
    const p8 = find("peer8", r.workers);
    const p9 = find("peer9", r.workers);
    const bare = find("bare", r.workers);
    r.vsPeer8 = r.rps / p8.rps;
    r.vsPeer9 = r.rps / p9.rps;
    r.vsBare = r.rps / bare.rps;
    r.p99VsPeer8 = r.p99 / p8.p99;
  }
  const elapsed = (Date.now() - t0) / 1000;
  const machine = {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu: os.cpus()[0] ? os.cpus()[0].model : "?",
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    redis: spawnSync("redis-server", ["--version"]).stdout.toString().trim().split(" ").find((s) => s.startsWith("v=")) || "?",
  };
  const versions = Object.fromEntries(
    ["express", "ioredis", "express-session", "connect-redis", "connect-redis-9", "redis", "autocannon"].map((n) => [n, pkgVersion(n)]),
  );
  const md = report({ rows, loginRuns, microResult, machine, versions, elapsed });
  console.log(`\n${md}`);
  if (!process.env.BENCH_NO_WRITE) writeFileSync(path.join(ROOT, "docs", "BENCHMARKS.md"), md);
  console.log(`bench: done in ${elapsed.toFixed(0)} s`);
}

const f0 = (x) => Math.round(x).toLocaleString("en-US");
const f2 = (x) => x.toFixed(2);

function report({ rows, loginRuns, microResult, machine, versions, elapsed }) {
  const lines = [];
  lines.push("# Benchmarks");
  lines.push("");
  lines.push("Generated by `npm run bench` (bench/run.js); do not edit the tables by hand, re-run it.");
  lines.push("");
  lines.push(`- command: \`npm run bench\` (= \`npm run build && node bench/run.js\`), ${ROUNDS} interleaved rounds, ` +
    `${DURATION_S} s per target per round after a ${WARMUP_S} s warm-up, ${CONNECTIONS} connections, autocannon in the ` +
    `bench process on the same machine; the table shows the median of the rounds; total ${elapsed.toFixed(0)} s`);
  lines.push(`- machine: ${machine.nproc} CPUs (${machine.cpu}), node ${machine.node}, ${machine.os}, redis-server ${machine.redis}`);
  lines.push(`- packages: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  lines.push("- request: `GET /api/auth/session` with the cookie of one login; every target answers the same JSON");
  lines.push("");
  lines.push("## Session check (GET /api/auth/session)");
  lines.push("");
  lines.push("| target | workers | req/s | p50 ms | p99 ms | vs ioredis peer | vs node-redis peer | vs bare | p99 vs ioredis peer | req/s per round |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.workers} | ${f0(r.rps)} | ${r.p50} | ${r.p99} | ${f2(r.vsPeer8)}x | ${f2(r.vsPeer9)}x | ${f2(r.vsBare)}x | ${f2(r.p99VsPeer8)}x | ${r.rounds.join(" / ")}${r.bad ? ` (${r.bad} non-2xx!)` : ""} |`,
    );
  }
  lines.push("");
  lines.push("## Login (POST /api/auth/login, scrypt-bound by design, near-cache on, 8 connections, 3 s)");
  lines.push("");
  lines.push("| workers | req/s | p50 ms | p99 ms |");
  lines.push("|---|---|---|---|");
  for (const l of loginRuns) lines.push(`| ${l.workers} | ${f0(l.rps)} | ${l.p50} | ${l.p99} |${l.bad ? ` ${l.bad} non-2xx` : ""}`);
  lines.push("");
  lines.push("## Against the targets of issue 6");
  lines.push("");
  lines.push("| target | workers | wanted | measured | |");
  lines.push("|---|---|---|---|---|");
  const check = (label, workers, wanted, measured, atLeast) => {
    const ok = atLeast ? measured >= wanted : measured <= wanted;
    const miss = atLeast ? 1 - measured / wanted : measured / wanted - 1;
    lines.push(`| ${label} | ${workers} | ${atLeast ? ">=" : "<="} ${f2(wanted)}x | ${f2(measured)}x | ${ok ? "met" : `missed by ${(miss * 100).toFixed(0)}%`} |`);
  };
  for (const w of [1, 2]) {
    const near = rows.find((r) => r.key === "near" && r.workers === w);
    const off = rows.find((r) => r.key === "nonear" && r.workers === w);
    check("near-cache on: req/s vs ioredis peer", w, 1.9, near.vsPeer8, true);
    check("near-cache on: req/s vs node-redis peer", w, 1.65, near.vsPeer9, true);
    check("near-cache on: req/s vs bare Express", w, 0.9, near.vsBare, true);
    check("near-cache on: p99 vs ioredis peer", w, 0.7, near.p99VsPeer8, false);
    check("near-cache off: req/s vs ioredis peer", w, 1.5, off.vsPeer8, true);
    check("near-cache off: p99 vs ioredis peer", w, 0.7, off.p99VsPeer8, false);
  }
  check("RedisSessionCache.get p50 vs raw ioredis GET", "-", 1.15, microResult.rows[1].p50 / microResult.rows[0].p50, false);
  lines.push("");
  lines.push(`## The cache itself (sequential calls in one process, ${microResult.n.toLocaleString("en-US")} each, interleaved call by call)`);
  lines.push("");
  lines.push("| operation | p50 µs | p99 µs | p50 vs raw GET |");
  lines.push("|---|---|---|---|");
  for (const m of microResult.rows) lines.push(`| ${m.label} | ${m.p50.toFixed(1)} | ${m.p99.toFixed(1)} | ${f2(m.p50 / microResult.rows[0].p50)}x |`);
  lines.push("");
  try {
    lines.push(readFileSync(path.join(__dirname, "notes.md"), "utf8").trimEnd());
    lines.push("");
  } catch {}
  return lines.join("\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
