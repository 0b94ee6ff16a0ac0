"use strict";
/**
 * `npm run bench:near`: the near-cache's freshness rules and tracking modes, side by side in one run,
 * on the built cache layer (dist/) in this process against a private redis-server (free loopback port,
 * temp dir, killed at the end):
 *  1. read throughput of known sessions (64 concurrent readers, interleaved rounds, median):
 *     near-cache off (every read a GET) / "bounded" (heartbeat lag bound, no per-request round trip) /
 *     "strict" (a local hit waits for a subscriber PING sent after the request arrived, batched);
 *  2. under invalidation load (two other instances logging in and touching sessions as fast as they can):
 *     what the checking instance's subscriber receives with BCAST vs default tracking, and the logout race
 *     (log out on one instance, check on another at once) in "bounded" vs "strict": stale accepts.
 * BENCH_ROUNDS, BENCH_DURATION_S, BENCH_CONCURRENCY override the defaults.
 */
const { spawn } = require("node:child_process");
const { mkdtempSync, rmSync } = require("node:fs");
const { randomBytes } = require("node:crypto");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");
const { spawnSync } = require("node:child_process");
const Redis = require("ioredis").default;
const { Cluster } = require("ioredis");
const { NearCache, RedisSessionCache } = require("../dist/src/cache");

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S || 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 64);
const SESSIONS = 1000;
const RACE_ROUNDS = 300;

const children = new Set();
const tmp = mkdtempSync(path.join(os.tmpdir(), "bangui-bench-near-"));
const clients = [];
function cleanup() {
  for (const c of clients) c.disconnect();
  for (const child of children) child.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
setTimeout(() => {
  console.error("bench:near: hard deadline reached");
  process.exit(2);
}, 600_000).unref();

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

async function startRedis(args = []) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmp, "r-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...args], { stdio: "ignore" });
  children.add(child);
  const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 100 });
  probe.on("error", () => undefined);
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      break;
    } catch {
      await sleep(100);
    }
  }
  await probe.ping();
  probe.disconnect();
  return { port, url: `redis://127.0.0.1:${port}`, child };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const newId = () => randomBytes(32).toString("hex");
function session(username) {
  const now = Date.now();
  return { username, createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000 };
}

/** A worker's cache; `traffic` counts what its subscriber receives. */
function makeCache(url, prefix, { near = true, freshness, trackingMode } = {}) {
  const traffic = { messages: 0, keys: 0, bytes: 0 };
  const data = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 2000, enableOfflineQueue: true });
  clients.push(data);
  const remote = new RedisSessionCache({ client: data, keyPrefix: prefix });
  if (!near) return { cache: remote, traffic };
  const cache = new NearCache({
    remote,
    freshness,
    trackingMode,
    pingIntervalMs: 200,
    maxSilenceMs: 1000,
    createSubscriber: () => {
      const sub = new Redis(url, { protocol: 2, maxRetriesPerRequest: 1, commandTimeout: 1000 });
      clients.push(sub);
      sub.on("messageBuffer", (_channel, message) => {
        traffic.messages++;
        for (const k of Array.isArray(message) ? message : [message]) {
          traffic.keys++;
          traffic.bytes += k ? k.length : 0;
        }
      });
      return sub;
    },
  });
  return { cache, traffic };
}

async function tracked(cache) {
  for (let i = 0; i < 500 && cache.tracking === false; i++) await sleep(10);
}

/** `CONCURRENCY` readers of known ids for `DURATION_S`: ops/s and latency percentiles (ms). */
async function readLoad(cache, ids) {
  const end = performance.now() + DURATION_S * 1000;
  const lat = [];
  let ops = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      let i = w;
      while (performance.now() < end) {
        const t = performance.now();
        const s = await cache.get(ids[i % ids.length]);
        if (s === null) throw new Error("bench:near: a known session read as null");
        if (ops % 16 === 0) lat.push(performance.now() - t);
        ops++;
        i += CONCURRENCY;
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { opsPerS: ops / DURATION_S, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

/** Logins (SET) and touches (SET XX) from `caches` until stop(). */
function writeLoad(caches) {
  let running = true;
  let writes = 0;
  const loops = caches.flatMap((cache) =>
    Array.from({ length: 8 }, async () => {
      const mine = [];
      while (running) {
        const id = newId();
        await cache.set(id, session("load"), 600);
        mine.push(id);
        if (mine.length > 20) mine.shift();
        await cache.update(mine[writes % mine.length], session("load"), 600);
        writes += 2;
      }
    }),
  );
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return writes;
    },
  };
}

async function readThroughput(url) {
  const variants = [
    { key: "off", label: "near-cache off (GET per read)", opts: { near: false } },
    { key: "bounded", label: 'near-cache "bounded" (lag bound, no round trip)', opts: { freshness: "bounded" } },
    { key: "strict", label: 'near-cache "strict" (batched subscriber PING per hit)', opts: { freshness: "strict" } },
  ];
  for (const v of variants) {
    v.made = makeCache(url, `bn${v.key}:`, v.opts);
    if (v.opts.near !== false) await tracked(v.made.cache);
    v.ids = Array.from({ length: SESSIONS }, newId);
    for (const id of v.ids) await v.made.cache.set(id, session("bench"), 3600);
    for (const id of v.ids) await v.made.cache.get(id);
    v.runs = [];
  }
  for (let r = 0; r < ROUNDS; r++) for (const v of variants) v.runs.push(await readLoad(v.made.cache, v.ids));
  const rows = variants.map((v) => {
    const best = v.runs.find((x) => x.opsPerS === median(v.runs.map((y) => y.opsPerS)));
    return { label: v.label, ...best };
  });
  for (const v of variants) await v.made.cache.close();
  return rows;
}

async function underLoad(url, trackingMode, freshness) {
  const prefix = `bl${randomBytes(3).toString("hex")}:`;
  const out = makeCache(url, prefix, { trackingMode, freshness });
  const check = makeCache(url, prefix, { trackingMode, freshness });
  const others = [makeCache(url, prefix, { trackingMode, freshness }), makeCache(url, prefix, { trackingMode, freshness })];
  for (const c of [out, check, ...others]) await tracked(c.cache);
  // The checker's own working set: 200 sessions it keeps reading.
  const ids = Array.from({ length: 200 }, newId);
  for (const id of ids) await out.cache.set(id, session("worker"), 600);
  const before = { ...check.traffic };
  const load = writeLoad(others.map((o) => o.cache));
  const t0 = performance.now();
  let stale = 0;
  let checks = 0;
  for (let round = 0; round < RACE_ROUNDS; round++) {
    const id = newId();
    await out.cache.set(id, session(`user${round}`), 600);
    for (let i = 0; i < 50; i++) if ((await check.cache.get(id)) !== null && i > 0) break;
    await out.cache.invalidate(id);
    if ((await check.cache.get(id)) !== null) stale++;
    for (const w of ids.slice((round * 10) % 200, (round * 10) % 200 + 10)) {
      await check.cache.get(w);
      checks++;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const writes = await load.stop();
  const t = check.traffic;
  for (const c of [out, check, ...others]) await c.cache.close();
  return {
    label: `${trackingMode} tracking, ${freshness}`,
    writesPerS: writes / seconds,
    keysPerS: (t.keys - before.keys) / seconds,
    bytesPerS: (t.bytes - before.bytes) / seconds,
    messagesPerS: (t.messages - before.messages) / seconds,
    stale,
    rounds: RACE_ROUNDS,
  };
}

/** Three masters, no replicas: `redis-cli --cluster create`, ready when every node says cluster_state:ok. */
async function startCluster() {
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startRedis(["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${i}.conf`]));
  const create = spawnSync("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"], { encoding: "utf8" });
  if (create.status !== 0) throw new Error(`bench:near: cluster create failed: ${create.stderr}`);
  for (const n of nodes) {
    const c = new Redis({ port: n.port, host: "127.0.0.1" });
    for (let i = 0; i < 100 && !/cluster_state:ok/.test(await c.cluster("INFO")); i++) await sleep(100);
    c.disconnect();
  }
  return nodes;
}

function makeClusterCache(nodes, prefix, near) {
  const data = new Cluster(nodes.map((n) => ({ host: "127.0.0.1", port: n.port })), { redisOptions: { commandTimeout: 2000 } });
  clients.push(data);
  const remote = new RedisSessionCache({ client: data, keyPrefix: prefix });
  if (!near) return remote;
  return new NearCache({
    remote,
    pingIntervalMs: 200,
    maxSilenceMs: 1000,
    createSubscriber: (node) => {
      const sub = new Redis({ host: node.host, port: node.port, protocol: 2, maxRetriesPerRequest: 1, commandTimeout: 1000 });
      clients.push(sub);
      return sub;
    },
  });
}

async function clusterThroughput() {
  const nodes = await startCluster();
  const variants = [
    { label: "Cluster, near-cache off", near: false },
    { label: 'Cluster, near-cache on ("strict", tracking per master)', near: true },
  ];
  for (const [i, v] of variants.entries()) {
    v.cache = makeClusterCache(nodes, `bc${i}:`, v.near);
    for (let t = 0; t < 500 && v.near && !v.cache.tracking; t++) await sleep(10);
    if (v.near && !v.cache.tracking) throw new Error("bench:near: tracking not established on the cluster");
    v.ids = Array.from({ length: SESSIONS }, newId);
    for (const id of v.ids) await v.cache.set(id, session("bench"), 3600);
    for (const id of v.ids) await v.cache.get(id);
    v.runs = [];
  }
  for (let r = 0; r < ROUNDS; r++) for (const v of variants) v.runs.push(await readLoad(v.cache, v.ids));
  for (const v of variants) await v.cache.close();
  return variants.map((v) => ({ label: v.label, ...v.runs.find((x) => x.opsPerS === median(v.runs.map((y) => y.opsPerS))) }));
}

async function main() {
  const redis = await startRedis();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`bench:near  node ${process.version}, ${os.cpus().length} cpus, load average ${load}`);
  console.log(`reads: ${CONCURRENCY} concurrent readers of ${SESSIONS} known sessions, ${ROUNDS} x ${DURATION_S} s interleaved, median round\n`);
  const rows = await readThroughput(redis.url);
  const off = rows[0].opsPerS;
  console.log("| variant | reads/s | x off | p50 ms | p99 ms |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.label} | ${Math.round(r.opsPerS)} | ${(r.opsPerS / off).toFixed(2)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
  const strict = rows[2].opsPerS;
  const bounded = rows[1].opsPerS;
  console.log(`\nstrict / bounded = ${(strict / bounded).toFixed(2)}, strict / off = ${(strict / off).toFixed(2)}\n`);

  const crows = await clusterThroughput();
  console.log("| Cluster (3 masters) | reads/s | x off | p50 ms | p99 ms |\n|---|---|---|---|---|");
  for (const r of crows) console.log(`| ${r.label} | ${Math.round(r.opsPerS)} | ${(r.opsPerS / crows[0].opsPerS).toFixed(2)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} |`);
  console.log("");

  console.log(`under invalidation load (2 instances x 8 loops of login + touch), ${RACE_ROUNDS} logout races, checker reads 10 of its 200 sessions per round\n`);
  console.log("| mode | writes/s (others) | keys/s to the checker's subscriber | bytes/s | messages/s | stale accepts |\n|---|---|---|---|---|---|");
  for (const [mode, freshness] of [["bcast", "strict"], ["default", "strict"], ["bcast", "bounded"], ["default", "bounded"]]) {
    const r = await underLoad(redis.url, mode, freshness);
    console.log(`| ${r.label} | ${Math.round(r.writesPerS)} | ${Math.round(r.keysPerS)} | ${Math.round(r.bytesPerS)} | ${Math.round(r.messagesPerS)} | ${r.stale} / ${r.rounds} |`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
