import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let caches: RedisSessionCache[];
beforeAll(async () => {
  server = await startRedisServer();
  const prefix = `p${randomBytes(3).toString("hex")}:`;
  // Four clients, like four workers sharing one Redis.
  caches = Array.from({ length: 4 }, () => new RedisSessionCache({ client: new Redis(server.url), keyPrefix: prefix }));
});
afterAll(async () => {
  for (const c of caches ?? []) await c.close();
  await server?.stop();
});

describe("RedisSessionCache under concurrent set/get/invalidate", () => {
  it("every client sees the others' writes and deletes, and the index stays consistent", async () => {
    const ids = Array.from({ length: 400 }, () => newId());
    await Promise.all(ids.map((id, i) => caches[i % 4]!.set(id, newSession(`user${i % 10}`), 60)));
    const seen = await Promise.all(ids.map((id, i) => caches[(i + 1) % 4]!.get(id)));
    expect(seen.every((s) => s !== null)).toBe(true);

    const doomed = ids.filter((_, i) => i % 2 === 0);
    await Promise.all([
      ...doomed.map((id, i) => caches[i % 4]!.invalidate(id)),
      ...ids.map((id, i) => caches[(i + 2) % 4]!.get(id)),
    ]);
    const after = await Promise.all(ids.map((id, i) => caches[(i + 3) % 4]!.get(id)));
    after.forEach((s, i) => expect(s === null).toBe(i % 2 === 0));

    let listed = 0;
    for (let u = 0; u < 10; u++) listed += (await caches[u % 4]!.listUserSessions(`user${u}`)).length;
    expect(listed).toBe(200);
  });
});
