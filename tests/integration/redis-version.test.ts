/**
 * The start-up version check against real servers: the redis-server of this machine (7.x) is accepted,
 * an unreachable one is an outage (logged, not a refusal). An older server is refused: that branch is
 * covered by tests/unit/redis-version.test.ts (parsing and refusal) and, end to end, by
 * tests/e2e/redis-version.test.ts against a stated stand-in (no Redis 6 binary here).
 */
import Redis from "ioredis";
import { assertRedisVersion, checkRedisServerVersion, parseRedisVersion } from "../../src/cache";
import { loadConfig } from "../../src/config";
import { silentLogger } from "../../src/logger";
import { freePort, startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

test("a real Redis 7.x is accepted", async () => {
  const client = new Redis(server.url);
  try {
    expect(parseRedisVersion(await client.info("server"))).toMatch(/^[7-9]\.|^\d{2,}\./);
    await expect(assertRedisVersion(client)).resolves.toBeUndefined();
  } finally {
    client.disconnect();
  }
  await expect(checkRedisServerVersion(loadConfig({ BANGUI_REDIS_URL: server.url }), silentLogger())).resolves.toBeUndefined();
});

test("an unreachable Redis does not stop the start (an outage, not a refusal)", async () => {
  const port = await freePort();
  const config = loadConfig({ BANGUI_REDIS_URL: `redis://127.0.0.1:${port}`, BANGUI_REDIS_CONNECT_TIMEOUT_MS: "300" });
  await expect(checkRedisServerVersion(config, silentLogger())).resolves.toBeUndefined();
});
