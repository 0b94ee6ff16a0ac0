/**
 * `bangui_session_backend_up` follows the data connection only: killing the near-cache subscriber's
 * connection leaves it at 1 (before the fix every client the factory built set it, so the subscriber's
 * reconnection showed the backend down); killing the data connection turns it to 0, then back to 1.
 */
import Redis from "ioredis";
import { createSessionBackend, NearCache, type SessionBackend } from "../../src/cache";
import { loadConfig } from "../../src/config";
import { silentLogger } from "../../src/logger";
import { metrics } from "../../src/metrics";
import { waitFor } from "../helpers/redis-process";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let admin: Redis;
let backend: SessionBackend;
beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  backend = createSessionBackend(
    loadConfig({ BANGUI_REDIS_URL: server.url, BANGUI_KEY_PREFIX: "up:", BANGUI_NEAR_CACHE: "true", BANGUI_REDIS_WAIT_REPLICAS: "auto" }),
    { logger: silentLogger(), registry: metrics.registry },
  );
});
afterAll(async () => {
  await backend?.close();
  admin?.disconnect();
  await server?.stop();
});

const up = async () => (await metrics.backendUp.get()).values[0]?.value ?? -1;
const clients = async () =>
  (await admin.client("LIST") as string).trim().split("\n").map((line) => new Map(line.split(" ").map((kv) => kv.split("=", 2) as [string, string])));

/** Polls `check` on every turn of the event loop until `until` holds; returns every value `check` gave. */
async function sampleUntil<T>(check: () => Promise<T>, until: () => boolean, what: string, timeoutMs = 20_000): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!until()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    seen.push(await check());
    await new Promise((r) => setImmediate(r));
  }
  seen.push(await check());
  return seen;
}

test("killing the near-cache subscriber leaves the gauge at 1; killing the data connection turns it to 0, then 1", async () => {
  const near = backend.cache as NearCache;
  expect(near).toBeInstanceOf(NearCache);
  await waitFor("near-cache tracking", 20_000, async () => near.tracking);
  expect(await up()).toBe(1);

  const subscriber = (await clients()).find((c) => c.get("sub") === "1");
  expect(subscriber).toBeDefined();
  await admin.client("KILL", "ID", subscriber!.get("id")!);
  // From the kill until tracking is back (the subscriber reconnected and re-subscribed), sample the gauge.
  let lost = false;
  const samples = await sampleUntil(
    async () => {
      if (!near.tracking) lost = true;
      return up();
    },
    () => lost && near.tracking,
    "the subscriber to be lost and back",
  );
  expect(samples.filter((v) => v !== 1)).toEqual([]);

  const dataId = String(await backend.redis!.client("ID"));
  await admin.client("KILL", "ID", dataId);
  await waitFor("the gauge to show the data connection down", 20_000, async () => (await up()) === 0, 1);
  await waitFor("the gauge to show it back", 20_000, async () => (await up()) === 1);
  expect(String(await backend.redis!.client("ID"))).not.toBe(dataId);
});
