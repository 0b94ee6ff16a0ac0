"use strict";
/**
 * Micro-benchmark of the cache itself, in this process, sequential calls (one in flight at a time):
 * a raw ioredis GET of a session value, RedisSessionCache.get of the same session (GET + JSON + zod),
 * and a NearCache hit. Interleaved in blocks so drift cancels; p50/p99 in microseconds.
 */
const { randomBytes } = require("node:crypto");
const { Redis } = require("ioredis");
const { RedisSessionCache, NearCache } = require("../dist/src/cache");

const N = Number(process.env.BENCH_MICRO_N || 20_000);
const BLOCK = 1; // one call of each in turn: drift (and other processes) hit every operation alike

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function micro(redisUrl) {
  const client = new Redis(redisUrl);
  const prefix = `micro${randomBytes(3).toString("hex")}:`;
  const cache = new RedisSessionCache({ client, keyPrefix: prefix, ownsClient: false });
  const near = new NearCache({
    remote: new RedisSessionCache({ client: new Redis(redisUrl), keyPrefix: prefix }),
    createSubscriber: () => new Redis(redisUrl, { protocol: 2 }),
  });
  const id = randomBytes(32).toString("hex");
  const now = Date.now();
  const session = {
    username: "bench",
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3_600_000,
    credentialId: randomBytes(16).toString("hex"),
    ip: "127.0.0.1",
    userAgent: "autocannon",
  };
  await cache.set(id, session, 3600);
  const key = cache.keys.session(id);
  for (let i = 0; i < 200 && !near.tracking; i++) await new Promise((r) => setTimeout(r, 10));
  await near.get(id);

  const ops = [
    { label: "raw ioredis GET of the session value", fn: () => client.get(key) },
    { label: "RedisSessionCache.get (GET + JSON.parse + zod)", fn: () => cache.get(id) },
    { label: `NearCache.get, local hit${near.tracking ? "" : " (tracking NOT up: read-through)"}`, fn: () => near.get(id) },
  ];
  const samples = ops.map(() => []);
  for (let w = 0; w < 2000; w++) for (const op of ops) await op.fn(); // warm-up (JIT)
  for (let done = 0; done < N; done += BLOCK) {
    for (let o = 0; o < ops.length; o++) {
      const fn = ops[o].fn;
      const out = samples[o];
      for (let i = 0; i < BLOCK; i++) {
        const s = process.hrtime.bigint();
        await fn();
        out.push(Number(process.hrtime.bigint() - s) / 1000);
      }
    }
  }
  const rows = ops.map((op, o) => {
    const sorted = samples[o].sort((a, b) => a - b);
    return { label: op.label, p50: pct(sorted, 50), p99: pct(sorted, 99) };
  });
  await cache.invalidate(id);
  await near.close();
  client.disconnect();
  return { n: N, rows };
}

module.exports = { micro };
