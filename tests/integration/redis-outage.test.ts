import { randomBytes } from "node:crypto";
import { RedisSessionCache, SessionBackendUnavailableError, createRedisClient } from "../../src/cache";
import { loadConfig } from "../../src/config";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { waitFor } from "../helpers/redis-process";

let server: RedisServerHandle;
let cache: RedisSessionCache;
beforeAll(async () => {
  server = await startRedisServer();
  const config = loadConfig({ BANGUI_REDIS_URL: server.url, BANGUI_REDIS_COMMAND_TIMEOUT_MS: "300" });
  cache = new RedisSessionCache({ client: createRedisClient(config.redis!, config), keyPrefix: `o${randomBytes(3).toString("hex")}:` });
  await waitFor("the client is ready", 5000, async () => (await cache.ping().then(() => true)));
});
afterAll(async () => {
  await cache?.close();
  await server?.stop();
});

async function expectUnavailable(p: Promise<unknown>): Promise<SessionBackendUnavailableError> {
  const err = await p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SessionBackendUnavailableError);
  return err as SessionBackendUnavailableError;
}

describe("RedisSessionCache when Redis is down", () => {
  it("a paused server: commands reject with SessionBackendUnavailableError (command timeout)", async () => {
    const id = newId();
    await cache.set(id, newSession("ivan"), 60);
    server.pause();
    try {
      const err = await expectUnavailable(cache.get(id));
      expect(err.message).not.toContain(id);
      expect(err.cause).toBeDefined();
    } finally {
      server.resume();
    }
    await waitFor("commands work again", 5000, async () => (await cache.get(id)) !== null);
  });

  it("a stopped server: every operation rejects, and works again after restart", async () => {
    const id = newId();
    await cache.set(id, newSession("judy"), 60);
    await server.kill();
    await expectUnavailable(cache.get(id));
    await expectUnavailable(cache.set(newId(), newSession("judy"), 60));
    await expectUnavailable(cache.update(id, newSession("judy"), 60));
    await expectUnavailable(cache.invalidate(id));
    await expectUnavailable(cache.listUserSessions("judy"));
    await expectUnavailable(cache.invalidateUser("judy"));
    await expectUnavailable(cache.clear());
    await expectUnavailable(cache.ping());

    await server.restart();
    await waitFor("the client reconnected", 10_000, async () => cache.ping().then(() => true));
    const again = newId();
    await cache.set(again, newSession("judy"), 60);
    expect(await cache.get(again)).not.toBeNull();
  });
});
