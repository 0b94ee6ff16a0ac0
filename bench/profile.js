"use strict";
/**
 * `node bench/profile.js [seconds]` (after `npm run build`): one worker of this service (near-cache on)
 * under autocannon on GET /api/auth/session, with `node --cpu-prof` (cluster workers inherit execArgv); prints the top self-time functions
 * and leaves the .cpuprofile in a temp dir (open it in Chrome DevTools). BENCH_NO_PROF=1: throughput only;
 * BENCH_MAIN: another build's main.js (A/B of a change).
 */
const { spawn, spawnSync } = require("node:child_process");
const { mkdtempSync, readdirSync, readFileSync } = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const autocannon = require("autocannon");

const ROOT = path.join(__dirname, "..");
const SECONDS = Number(process.argv[2] || 5);
const PASSWORD = "bench-password-not-secret";
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-prof-"));
const kids = [];
process.on("exit", () => kids.forEach((k) => k.exitCode === null && k.kill("SIGKILL")));
setTimeout(() => process.exit(2), 120_000).unref();

const freePort = () =>
  new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const rport = await freePort();
  kids.push(spawn("redis-server", ["--port", String(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], { stdio: "ignore" }));
  const usersFile = path.join(tmp, "users.json");
  await sleep(300);
  spawnSync(process.execPath, ["dist/src/auth/users-cli.js", "add", "bench"], { cwd: ROOT, input: `${PASSWORD}\n`, env: { ...process.env, BANGUI_USERS_FILE: usersFile } });
  const port = await freePort();
  const profDir = path.join(tmp, "prof");
  const main = process.env.BENCH_MAIN || "dist/src/main.js";
  const noProf = process.env.BENCH_NO_PROF === "1";
  const svc = spawn(process.execPath, [...(noProf ? [] : ["--cpu-prof", `--cpu-prof-dir=${profDir}`]), main], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      BANGUI_REDIS_URL: `redis://127.0.0.1:${rport}`,
      BANGUI_PORT: String(port),
      BANGUI_USERS_FILE: usersFile,
      BANGUI_COOKIE_SECURE: "false",
      NODE_ENV: "production",
    },
  });
  kids.push(svc);
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    await sleep(100);
  }
  const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: PASSWORD }),
  });
  const cookie = (login.headers.get("set-cookie") || "").split(";")[0];
  const r = await autocannon({ url: `http://127.0.0.1:${port}/api/auth/session`, headers: { cookie }, connections: 32, duration: SECONDS });
  console.log(`${Math.round(r.requests.total / SECONDS)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`);
  const exited = new Promise((res) => svc.once("exit", res));
  svc.kill("SIGTERM");
  await exited;
  if (noProf) return;
  await sleep(500);
  const files = readdirSync(profDir).map((f) => path.join(profDir, f));
  // The worker's profile is the biggest one (the primary idles).
  const file = files.sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0];
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const self = new Map();
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const dt = prof.timeDeltas;
  let total = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id);
    const cf = n.callFrame;
    const key = `${cf.functionName || "(anon)"} ${cf.url.replace(/^.*node_modules\//, "nm:").replace(ROOT, "")}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) || 0) + (dt[i] || 0));
    total += dt[i] || 0;
  });
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [k, v] of top) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  // Inclusive time per package / area.
  const area = new Map();
  prof.samples.forEach((id, i) => {
    const url = byId.get(id).callFrame.url;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    const a = m ? m[1] : url.includes("/dist/src/") ? url.replace(/^.*\/dist\/src\//, "src/") : url.startsWith("node:") ? "node:*" : "(native/gc/idle)";
    area.set(a, (area.get(a) || 0) + (dt[i] || 0));
  });
  console.log("\nself time by area:");
  for (const [k, v] of [...area.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  console.log(`\nprofile: ${file}`);
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
