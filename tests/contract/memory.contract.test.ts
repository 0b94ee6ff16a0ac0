import { InMemorySessionCache } from "../../src/cache";
import { describeSessionCacheContract } from "./session-cache.contract";

describeSessionCacheContract("memory", () => new InMemorySessionCache({ maxSessions: 1000 }), { stores: true });

describe("InMemorySessionCache bounds", () => {
  const session = (username: string) => {
    const now = Date.now();
    return { username, createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 };
  };

  it("evicts the least recently used session beyond maxSessions, and drops it from the user index", async () => {
    const cache = new InMemorySessionCache({ maxSessions: 3 });
    await cache.set("a", session("u"), 60);
    await cache.set("b", session("u"), 60);
    await cache.set("c", session("u"), 60);
    await cache.get("a"); // a is now more recent than b
    await cache.set("d", session("u"), 60);
    expect(await cache.get("b")).toBeNull();
    expect(await cache.get("a")).not.toBeNull();
    expect((await cache.listUserSessions("u")).map((e) => e.id).sort()).toEqual(["a", "c", "d"]);
  });

  it("expires by the injected clock", async () => {
    let now = 1_000_000;
    const cache = new InMemorySessionCache({ clock: () => now });
    await cache.set("a", { username: "u", createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000 }, 10);
    expect(await cache.get("a")).not.toBeNull();
    now += 10_001;
    expect(await cache.get("a")).toBeNull();
  });
});
