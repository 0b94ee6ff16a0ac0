"use strict";
/**
 * `npm run bench:store`: express-session stores side by side, one interleaved run.
 *  1. a private redis-server on a free loopback port in a temp dir;
 *  2. the same app (tests/e2e/fixtures/session-app.js: Express 5, express-session, resave: false,
 *     saveUninitialized: false; GET /me reads req.session.user) with three stores, 1 and 2 workers:
 *     RedisSessionStore (this package), connect-redis 8 on ioredis, connect-redis 9 on node-redis;
 *  3. one login per app, then GET /me with its cookie under autocannon, interleaved over rounds
 *     (A B C A B C ...) so machine drift cancels; the median of the rounds is reported;
 *  4. Redis commands per request from INFO commandstats (every command but INFO and the near-cache
 *     subscribers' liveness PINGs), measured around each run;
 *  5. prints the table and the ratios, and writes them under "express-session stores" in docs/BENCHMARKS.md.
 * Everything it starts is stopped at the end (and on a hard deadline). BENCH_ROUNDS, BENCH_DURATION_S,
 * BENCH_CONNECTIONS override the defaults; BENCH_NO_WRITE=1 leaves docs/ alone.
 */
const { spawn } = require("node:child_process");
const { mkdtempSync, rmSync, readFileSync, writeFileSync } = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const autocannon = require("autocannon");
const Redis = require("ioredis");

const ROOT = path.join(__dirname, "..");
const APP = path.join(ROOT, "tests", "e2e", "fixtures", "session-app.js");
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S || 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const HARD_DEADLINE_MS = 400_000;
const STORES = [
  { id: "bangui", label: "RedisSessionStore (this package, ioredis)" },
  { id: "connect-redis-8", label: "connect-redis 8 (ioredis)" },
  { id: "connect-redis-9", label: "connect-redis 9 (node-redis)" },
];

const children = new Set();
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-bench-store-"));
function cleanup() {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }
  children.clear();
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  console.error("bench:store: hard deadline reached, stopping everything");
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

/** Starts a child (in its own process group, so its workers stop with it); resolves its first JSON line. */
function startChild(cmd, args, env) {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"], detached: true });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function firstJsonLine(child) {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined) resolve(JSON.parse(line));
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code} before listening`)));
  });
}

async function stopGroup(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }, 3000);
  await exited;
  clearTimeout(t);
}

/** Sum of INFO commandstats calls, without INFO itself and PING (near-cache liveness, not per request). */
async function commandCount(admin) {
  const text = await admin.info("commandstats");
  let n = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== "info" && m[1] !== "ping") n += Number(m[2]);
  }
  return n;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const t0 = Date.now();
  const redisPort = await freePort();
  startChild("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], {});
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const admin = new Redis(redisUrl, { retryStrategy: (n) => (n > 100 ? null : 50) });
  admin.on("error", () => undefined); // refused until redis-server listens: retried
  await admin.ping();

  const targets = [];
  for (const workers of [1, 2]) {
    for (const store of STORES) {
      const child = startChild(process.execPath, [APP], {
        REDIS_URL: redisUrl,
        STORE: store.id,
        WORKERS: String(workers),
        PREFIX: `b${workers}${store.id}:`,
      });
      const { port } = await firstJsonLine(child);
      const url = `http://127.0.0.1:${port}`;
      const login = await fetch(`${url}/login?user=bench`, { method: "POST" });
      const cookie = login.headers.get("set-cookie").split(";")[0];
      targets.push({ ...store, workers, url, cookie, child, rps: [], p99: [], cmds: [] });
    }
  }

  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const opts = { url: `${t.url}/me`, headers: { cookie: t.cookie }, connections: CONNECTIONS };
      await autocannon({ ...opts, duration: 1 }); // warm-up (JIT, near-cache fill)
      const before = await commandCount(admin);
      const r = await autocannon({ ...opts, duration: DURATION_S });
      const after = await commandCount(admin);
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${t.label}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      t.rps.push(r.requests.average);
      t.p99.push(r.latency.p99);
      t.cmds.push((after - before) / Math.max(1, r.requests.total));
      console.error(`round ${round} ${t.workers}w ${t.id}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms`);
    }
  }
  for (const t of targets) await stopGroup(t.child);
  admin.disconnect();

  const load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  const lines = [
    "| workers | store | req/s (median) | p99 ms (median) | Redis commands / request |",
    "|---|---|---|---|---|",
  ];
  const ratios = [];
  for (const workers of [1, 2]) {
    const row = (id) => targets.find((t) => t.workers === workers && t.id === id);
    for (const id of STORES.map((s) => s.id)) {
      const t = row(id);
      lines.push(`| ${workers} | ${t.label} | ${Math.round(median(t.rps))} | ${median(t.p99)} | ${median(t.cmds).toFixed(3)} |`);
    }
    const [ours, cr8, cr9] = STORES.map((s) => row(s.id));
    ratios.push(
      `- ${workers} worker(s): req/s ${(median(ours.rps) / median(cr8.rps)).toFixed(2)}x connect-redis 8 ` +
        `(${(median(ours.rps) / median(cr9.rps)).toFixed(2)}x connect-redis 9); p99 ${(median(ours.p99) / median(cr8.p99)).toFixed(2)}x ` +
        `connect-redis 8 (${(median(ours.p99) / median(cr9.p99)).toFixed(2)}x connect-redis 9)`,
    );
  }
  const section = [
    "<!-- bench:store:start -->",
    "## express-session stores (`npm run bench:store`)",
    "",
    `Command: \`npm run bench:store\` (bench/store.js): the same Express 5 app (tests/e2e/fixtures/session-app.js, ` +
      "`resave: false`, `saveUninitialized: false`, `GET /me` reads `req.session.user` of a logged-in session) with " +
      `three stores on one private redis-server, ${ROUNDS} interleaved rounds of ${DURATION_S} s, ${CONNECTIONS} connections, ` +
      `median of the rounds. ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPUs, load average at the end: ${load} ` +
      "(other engineers were loading the machine: compare ratios within this run, not absolute numbers).",
    "",
    ...lines,
    "",
    "Ratios (RedisSessionStore vs the others, same run):",
    ...ratios,
    "",
    "Redis commands per request: every command in INFO commandstats during the run but INFO and PING " +
      "(the near-cache subscribers' liveness ping, on a timer, not per request), divided by the requests.",
    "<!-- bench:store:end -->",
  ].join("\n");
  console.log(section);
  console.error(`bench:store: ${Math.round((Date.now() - t0) / 1000)} s`);
  if (process.env.BENCH_NO_WRITE !== "1") {
    const file = path.join(ROOT, "docs", "BENCHMARKS.md");
    let text = readFileSync(file, "utf8");
    const re = /<!-- bench:store:start -->[\s\S]*<!-- bench:store:end -->/;
    text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
    writeFileSync(file, text);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
