"use strict";
/**
 * `npm run bench:verify`: the verify endpoint a reverse proxy asks on every request, side by side in one
 * run with 1 and 2 workers:
 *   verify   this service, GET /api/auth/verify (the lean path), Redis + near-cache
 *   session  this service, GET /api/auth/session (also on the lean path, with helmet's headers), same process
 *   peer     express-session + connect-redis 8 on ioredis (bench/peer-app.js), GET /api/auth/session
 *   bare     a bare node:http handler answering 200 + Remote-User (bench/bare-http.js): the CPU floor
 * Rounds are interleaved (A B C D A B C D ...) so machine drift cancels; the median of the rounds is
 * reported. CPU per request is the user+system time of the target's processes (primary and workers, read
 * from /proc/<pid>/stat before and after each measured run) divided by the requests answered.
 * BENCH_ROUNDS, BENCH_DURATION_S, BENCH_CONNECTIONS override the defaults. Prints a markdown table.
 */
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const { mkdtempSync, rmSync, readFileSync } = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const autocannon = require("autocannon");

const ROOT = path.join(__dirname, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S || 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const WARMUP_S = 1;
const HARD_DEADLINE_MS = 280_000;
const PASSWORD = "bench-password-not-secret";
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

const children = new Set();
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-bench-verify-"));
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
  console.error("bench:verify: hard deadline reached, stopping everything");
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

function start(args, env, name) {
  const child = spawn(args[0], args.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-2000)));
  child.on("exit", (code) => {
    children.delete(child);
    if (code && !child.stopping) console.error(`bench:verify: ${name} exited with ${code}\n${stderr}`);
  });
  children.add(child);
  return child;
}

async function waitFor(fn, what, ms = 90_000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {}
    if (Date.now() > end) throw new Error(`bench:verify: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pingRedis(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.on("error", () => resolve(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      sock.destroy();
    });
  });
}

/** The pid and every descendant's pid (workers of node:cluster). */
function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, "utf8").trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    } catch {}
  }
  return out;
}

/** User + system CPU seconds of a process tree so far. */
function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the whole line)
    } catch {}
  }
  return ticks / CLK_TCK;
}

async function login(port) {
  const res = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`bench:verify: login on ${port} answered ${res.status}`);
  return (res.headers.get("set-cookie") || "").split(";")[0];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const t0 = Date.now();
  const redisPort = await freePort();
  const redisProc = start(["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], {}, "redis");
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await waitFor(() => pingRedis(redisPort), "redis-server");
  const usersFile = path.join(tmp, "users.json");
  const add = spawnSync(process.execPath, ["dist/src/auth/users-cli.js", "add", "bench"], {
    cwd: ROOT,
    input: `${PASSWORD}\n`,
    env: { ...process.env, BANGUI_USERS_FILE: usersFile },
  });
  if (add.status !== 0) throw new Error(`bench:verify: users add failed: ${add.stderr}`);

  const servers = [];
  const targets = [];
  for (const workers of [1, 2]) {
    const svcPort = await freePort();
    const svc = start([process.execPath, "dist/src/main.js"], {
      BANGUI_REDIS_URL: redisUrl,
      BANGUI_WORKERS: String(workers),
      BANGUI_HOST: "127.0.0.1",
      BANGUI_PORT: String(svcPort),
      BANGUI_USERS_FILE: usersFile,
      BANGUI_KEY_PREFIX: `bv${workers}:`,
      BANGUI_LOG_LEVEL: "info",
      NODE_ENV: "production",
      BANGUI_COOKIE_SECURE: "false",
    }, `service/${workers}`);
    const peerPort = await freePort();
    const peer = start([process.execPath, "bench/peer-app.js"], { PORT: String(peerPort), WORKERS: String(workers), REDIS_URL: redisUrl, PEER_CLIENT: "ioredis", NODE_ENV: "production" }, `peer/${workers}`);
    const barePort = await freePort();
    const bare = start([process.execPath, "bench/bare-http.js"], { PORT: String(barePort), WORKERS: String(workers) }, `bare/${workers}`);
    servers.push(svc, peer, bare);
    targets.push(
      { key: "verify", label: "this service: GET /api/auth/verify (lean path)", workers, port: svcPort, child: svc, path: "/api/auth/verify" },
      { key: "session", label: "this service: GET /api/auth/session (lean path, with page headers)", workers, port: svcPort, child: svc, path: "/api/auth/session" },
      { key: "peer", label: "peer: express-session + connect-redis 8 (ioredis), GET /api/auth/session", workers, port: peerPort, child: peer, path: "/api/auth/session" },
      { key: "bare", label: "bare node:http handler (200 + Remote-User, no session)", workers, port: barePort, child: bare, path: "/api/auth/verify" },
    );
  }
  for (const t of targets) {
    t.runs = [];
    await waitFor(async () => (await fetch(`http://127.0.0.1:${t.port}/healthz`)).status === 200, `${t.key}/${t.workers}`);
    t.cookie = t.key === "bare" ? "" : await login(t.port);
    if (t.key !== "bare") {
      const check = await fetch(`http://127.0.0.1:${t.port}${t.path}`, { headers: { cookie: t.cookie } });
      if (check.status !== 200) throw new Error(`bench:verify: ${t.key}/${t.workers} answered ${check.status}`);
    }
  }
  console.log(`bench:verify: ${targets.length} targets up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds of ${DURATION_S} s, ${CONNECTIONS} connections`);

  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const opts = { url: `http://127.0.0.1:${t.port}${t.path}`, headers: { cookie: t.cookie }, connections: CONNECTIONS };
      await autocannon({ ...opts, duration: WARMUP_S });
      const cpu0 = cpuSeconds(t.child.pid);
      const r = await autocannon({ ...opts, duration: DURATION_S });
      const cpu = cpuSeconds(t.child.pid) - cpu0;
      const bad = r.non2xx + r.errors + r.timeouts;
      const rps = r.requests.total / DURATION_S;
      const cpuUs = (cpu / Math.max(1, r.requests.total)) * 1e6;
      t.runs.push({ rps, p99: r.latency.p99, cpuUs, bad });
      console.log(`  round ${round} ${t.key.padEnd(7)} w=${t.workers}: ${Math.round(rps)} req/s, p99 ${r.latency.p99} ms, ${cpuUs.toFixed(1)} µs CPU/req${bad ? ` (${bad} non-2xx/errors!)` : ""}`);
    }
  }
  for (const child of servers) child.stopping = true;
  for (const child of [...servers, redisProc]) child.kill("SIGTERM");

  const rows = targets.map((t) => ({
    ...t,
    rps: median(t.runs.map((r) => r.rps)),
    p99: median(t.runs.map((r) => r.p99)),
    cpuUs: median(t.runs.map((r) => r.cpuUs)),
    bad: t.runs.reduce((n, r) => n + r.bad, 0),
  }));
  const find = (key, w) => rows.find((r) => r.key === key && r.workers === w);
  const lines = [];
  lines.push(`- command: \`npm run bench:verify\` (${ROUNDS} interleaved rounds, ${DURATION_S} s each after a ${WARMUP_S} s warm-up, ${CONNECTIONS} connections, median shown; ${((Date.now() - t0) / 1000).toFixed(0)} s in all)`);
  lines.push(`- machine: ${os.availableParallelism ? os.availableParallelism() : os.cpus().length} CPUs (${os.cpus()[0] ? os.cpus()[0].model : "?"}), node ${process.version}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(" / ")}`);
  lines.push("- CPU/req: user+system CPU of the target's processes (primary and workers) during the measured run / requests answered; autocannon and Redis not counted");
  lines.push("");
  lines.push("| target | workers | req/s | p99 ms | CPU µs/req | req/s vs peer | CPU vs bare node:http | req/s per round |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const peer = find("peer", r.workers);
    const bare = find("bare", r.workers);
    lines.push(
      `| ${r.label} | ${r.workers} | ${Math.round(r.rps).toLocaleString("en-US")} | ${r.p99} | ${r.cpuUs.toFixed(1)} | ${(r.rps / peer.rps).toFixed(2)}x | ${(r.cpuUs / bare.cpuUs).toFixed(2)}x | ${r.runs.map((x) => Math.round(x.rps)).join(" / ")}${r.bad ? ` (${r.bad} non-2xx!)` : ""} |`,
    );
  }
  console.log(`\n${lines.join("\n")}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
