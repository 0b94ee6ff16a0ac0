import Redis from "ioredis";
import type { NearCache } from "../../src/cache";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { captureLogger, makeNear, newId, session, uniquePrefix, until } from "./near-cache-helpers";

describe("near-cache when its subscriber connection is killed", () => {
  let server: RedisServerHandle;
  let admin: Redis;
  let a: NearCache;
  let b: NearCache;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
    const prefix = uniquePrefix();
    a = makeNear(server.url, prefix);
    b = makeNear(server.url, prefix, { name: "near-b-sub" });
    await until(() => a.tracking && b.tracking, "tracking on both instances");
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    admin?.disconnect();
    await server?.stop();
  });

  async function killSubscriberOfB(): Promise<void> {
    const list = (await admin.client("LIST")) as string;
    const line = list.split("\n").find((l) => l.includes(" name=near-b-sub "));
    const id = line && /^id=(\d+)/.exec(line)?.[1];
    if (!id) throw new Error("subscriber of b not found");
    await admin.client("KILL", "ID", id);
  }

  it("an invalidation made while the subscriber is down is not missed, and tracking comes back", async () => {
    const id = newId();
    await a.set(id, session("alice"), 60);
    expect(await b.get(id)).not.toBeNull();
    expect(await b.get(id)).not.toBeNull(); // cached in b

    await killSubscriberOfB();
    await a.invalidate(id); // its invalidation message to b is lost: b's subscriber is gone
    expect(await b.get(id)).toBeNull();

    await until(() => b.tracking, "b to re-establish tracking");
    expect(await b.get(id)).toBeNull();
    const other = newId();
    await a.set(other, session("alice", { ip: "10.0.0.9" }), 60);
    expect(await b.get(other)).toMatchObject({ ip: "10.0.0.9" });
    expect(await b.get(other)).toMatchObject({ ip: "10.0.0.9" });
    await a.invalidate(other); // seen through the new subscriber connection
    expect(await b.get(other)).toBeNull();
  });

  it("no entry cached before a kill survives it, whatever happens to it meanwhile", async () => {
    const ids = Array.from({ length: 50 }, () => newId());
    for (const id of ids) await a.set(id, session("bob"), 60);
    for (const id of ids) expect(await b.get(id)).not.toBeNull();
    await killSubscriberOfB();
    for (const id of ids) await a.update(id, session("bob", { ip: "10.1.1.1" }), 60);
    await until(() => b.tracking, "b to re-establish tracking");
    for (const id of ids) expect(await b.get(id)).toMatchObject({ ip: "10.1.1.1" });
  });

  it("a reconnect of the data connection empties the local layer and re-establishes tracking", async () => {
    const id = newId();
    await a.set(id, session("carol"), 60);
    expect(await b.get(id)).not.toBeNull();
    const list = (await admin.client("LIST")) as string;
    // The data connection of b is the one with tracking on that is not a's: kill every tracking client.
    for (const line of list.split("\n")) {
      const m = /^id=(\d+) .* flags=\S*t\S* /.exec(line);
      if (m) await admin.client("KILL", "ID", m[1]!);
    }
    await a.invalidate(id).catch(() => undefined);
    await until(async () => {
      try {
        return (await b.get(id)) === null;
      } catch {
        return false;
      }
    }, "b to answer again");
    await until(() => a.tracking && b.tracking, "tracking back on both");
    await a.set(id, session("carol", { ip: "10.2.2.2" }), 60);
    expect(await b.get(id)).toMatchObject({ ip: "10.2.2.2" });
    await a.invalidate(id);
    expect(await b.get(id)).toBeNull();
  });
});

describe("near-cache on a frozen Redis (SIGSTOP: sockets open, no answers)", () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    server?.resume();
    await server?.stop();
  });

  it("stops serving local hits once the subscriber has been silent for maxSilenceMs, before any ping has failed", async () => {
    // Subscriber pings time out after 3 s here: a ping-only check would serve hits for ~3 s.
    const near = makeNear(server.url, uniquePrefix(), { pingIntervalMs: 50, maxSilenceMs: 200, subscriberCommandTimeoutMs: 3000 });
    try {
      await until(() => near.tracking, "tracking");
      const id = newId();
      await near.set(id, session("erin"), 60);
      expect(await near.get(id)).not.toBeNull();
      expect(await near.get(id)).not.toBeNull(); // a local hit now
      server.pause();
      const pausedAt = Date.now();
      await new Promise((r) => setTimeout(r, 400));
      const askedAt = Date.now();
      // The ping in flight has not failed yet: tracking still counts as up, yet the hit is refused.
      expect(near.tracking).toBe(true);
      await expect(near.get(id)).rejects.toMatchObject({ name: "SessionBackendUnavailableError" });
      expect(askedAt - pausedAt).toBeLessThan(3000);
      server.resume();
      await until(() => near.tracking, "tracking after SIGCONT");
      await until(async () => (await near.get(id).catch(() => null)) !== null, "the session again");
    } finally {
      server.resume();
      await near.close();
    }
  });
});

describe("near-cache on a server that refuses CLIENT TRACKING", () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer({ args: ["--rename-command", "CLIENT", ""] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("stays off with one log line, and reads and invalidations stay correct", async () => {
    const { logger, lines } = captureLogger();
    const prefix = uniquePrefix();
    const a = makeNear(server.url, prefix, { logger });
    const b = makeNear(server.url, prefix, { logger });
    try {
      await until(() => lines.filter((l) => String(l.msg).startsWith("near-cache off")).length === 2, "the off log lines");
      expect(a.tracking).toBe(false);
      const id = newId();
      await a.set(id, session("dave"), 60);
      expect(await b.get(id)).toMatchObject({ username: "dave" });
      expect(await b.get(id)).toMatchObject({ username: "dave" });
      await a.invalidate(id);
      expect(await b.get(id)).toBeNull();
      await new Promise((r) => setTimeout(r, 300));
      // One line per instance, no retry storm.
      expect(lines.filter((l) => String(l.msg).startsWith("near-cache off"))).toHaveLength(2);
      expect(String(lines.find((l) => String(l.msg).startsWith("near-cache off"))?.reason)).toMatch(/refused client tracking/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("near-cache turned off (BANGUI_NEAR_CACHE=off)", () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("keeps nothing locally, opens no subscriber and reads through every time", async () => {
    const prefix = uniquePrefix();
    const a = makeNear(server.url, prefix);
    const b = makeNear(server.url, prefix, { enabled: false });
    try {
      expect(b.enabled).toBe(false);
      expect(b.tracking).toBe(false);
      expect(b.subscribersCreated).toBe(0);
      const id = newId();
      await a.set(id, session("erin"), 60);
      expect(await b.get(id)).toMatchObject({ username: "erin" });
      await a.invalidate(id);
      expect(await b.get(id)).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("near-cache whose subscriber reaches another server than its data connection", () => {
  let main: RedisServerHandle;
  let other: RedisServerHandle;
  const idle: Redis[] = [];
  beforeAll(async () => {
    [main, other] = await Promise.all([startRedisServer(), startRedisServer()]);
    // Occupy the low client ids on the main server: the subscriber's id on the other server then names a
    // stranger here, so tracking redirected to it would look fine and deliver nothing.
    for (let i = 0; i < 12; i++) {
      const c = new Redis(main.url);
      await c.ping();
      idle.push(c);
    }
  });
  afterAll(async () => {
    for (const c of idle) c.disconnect();
    await main?.stop();
    await other?.stop();
  });

  it("never serves local entries (as after a Sentinel failover), and stays coherent", async () => {
    const prefix = uniquePrefix();
    const a = makeNear(main.url, prefix);
    const b = makeNear(main.url, prefix, { subscriberUrl: other.url });
    try {
      await until(() => a.tracking, "tracking on a");
      await new Promise((r) => setTimeout(r, 500));
      expect(b.tracking).toBe(false);
      const id = newId();
      await a.set(id, session("frank"), 60);
      expect(await b.get(id)).not.toBeNull();
      expect(await b.get(id)).not.toBeNull();
      await a.invalidate(id);
      expect(await b.get(id)).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
