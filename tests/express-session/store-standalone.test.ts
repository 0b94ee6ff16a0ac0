/** The RedisSessionStore contract on a standalone Redis, plus what needs a server of our own (stop it). */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Redis from "ioredis";
import { Registry } from "prom-client";
import { SessionBackendUnavailableError } from "../../src/errors";
import { RedisSessionStore } from "../../src/express-session";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { describeStoreContract, newSid, ready, sessionData } from "./store.contract";

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

const client = () => new Redis(server.url, { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 1 });

describeStoreContract("standalone", client, { nearCache: true });

describe("RedisSessionStore on standalone: near-cache, callbacks, outage", () => {
  const stores: RedisSessionStore[] = [];
  const clients: Redis[] = [];
  const newClient = () => {
    const c = client();
    clients.push(c);
    return c;
  };
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const c of clients) c.disconnect();
  });

  it("a get of a known session is a local hit: no command reaches Redis; a destroy elsewhere is seen by the next get", async () => {
    const prefix = `nc${randomBytes(3).toString("hex")}:`;
    const registry = new Registry();
    const [ca, cb, cm] = [newClient(), newClient(), newClient()];
    await Promise.all([ready(ca), ready(cb), ready(cm)]);
    const a = new RedisSessionStore({ client: ca, prefix });
    const b = new RedisSessionStore({ client: cb, prefix, registry });
    stores.push(a, b);
    await until(() => a.nearCacheActive && b.nearCacheActive, "tracking on both stores");
    const sid = newSid();
    await a.set(sid, sessionData({ user: "dee" }));
    expect(await b.get(sid)).toMatchObject({ user: "dee" }); // fills b's near-cache
    const seen: string[][] = [];
    const monitor = await cm.monitor();
    monitor.on("monitor", (_time: string, args: string[]) => seen.push(args));
    // MONITOR starts before its OK: a marker command proves it is on.
    await until(async () => {
      await ca.echo("marker");
      return seen.some((c) => c[0]?.toLowerCase() === "echo");
    }, "MONITOR running");
    seen.length = 0;
    const hitsBefore = await counter(registry, "bangui_near_cache_hits_total");
    for (let i = 0; i < 20; i++) expect(await b.get(sid)).toMatchObject({ user: "dee" });
    expect(await counter(registry, "bangui_near_cache_hits_total")).toBe(hitsBefore + 20);
    await ca.echo("end-marker");
    await until(() => seen.some((c) => c[1] === "end-marker"), "end marker");
    const sessionCommands = seen.filter((c) => c[0]?.toLowerCase() !== "ping" && c[1] !== "end-marker");
    expect(sessionCommands).toEqual([]);
    monitor.disconnect();
    // Redis sends the invalidation to b's subscriber before it answers a's UNLINK. Another process learns
    // of the destroy only after that answer (an HTTP hop at least: tests/e2e/express-session-apps.test.ts);
    // in this one process, b's next get after the message is processed misses.
    const invalidations = await counter(registry, "bangui_near_cache_invalidations_total");
    await a.destroy(sid);
    await until(async () => (await counter(registry, "bangui_near_cache_invalidations_total")) > invalidations, "b's invalidation");
    expect(await b.get(sid)).toBeNull();
  });

  it("freshness 'strict': a destroy is seen by the very next get even in the same event-loop turn", async () => {
    const prefix = `ns${randomBytes(3).toString("hex")}:`;
    const [ca, cb] = [newClient(), newClient()];
    await Promise.all([ready(ca), ready(cb)]);
    const a = new RedisSessionStore({ client: ca, prefix });
    const b = new RedisSessionStore({ client: cb, prefix, freshness: "strict" });
    stores.push(a, b);
    await until(() => a.nearCacheActive && b.nearCacheActive, "tracking on both stores");
    for (let i = 0; i < 20; i++) {
      const sid = newSid();
      await a.set(sid, sessionData());
      expect(await b.get(sid)).not.toBeNull();
      expect(await b.get(sid)).not.toBeNull();
      await a.destroy(sid);
      expect(await b.get(sid)).toBeNull();
    }
  });

  it("each callback is called exactly once, also when it throws (the throw is an uncaught exception)", async () => {
    const script = `
      const Redis = require("ioredis");
      const { RedisSessionStore } = require(${JSON.stringify(join(__dirname, "../../dist/src/express-session"))});
      const client = new Redis(${JSON.stringify(server.url)}, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
      const store = new RedisSessionStore({ client, nearCache: false });
      let calls = 0;
      process.on("uncaughtException", async (err) => {
        // One more round trip: a second call of the callback (from a catch around it) would have come by now.
        await store.length();
        await new Promise((r) => setImmediate(r));
        process.stdout.write(JSON.stringify({ calls, uncaught: err.message }));
        client.disconnect();
      });
      store.get("some-sid", () => { calls++; throw new Error("thrown by the callback"); });
    `;
    const out = await runNode(script);
    expect(JSON.parse(out)).toEqual({ calls: 1, uncaught: "thrown by the callback" });
  });

  it("Redis stopped: every call rejects with SessionBackendUnavailableError, none resolves to 'no session'", async () => {
    const c = newClient();
    await ready(c);
    const store = new RedisSessionStore({ client: c, prefix: `out${randomBytes(3).toString("hex")}:` });
    stores.push(store);
    await until(() => store.nearCacheActive, "tracking");
    const sid = newSid();
    await store.set(sid, sessionData());
    expect(await store.get(sid)).not.toBeNull();
    expect(await store.get(sid)).not.toBeNull(); // a local hit now
    await server.stop();
    // A local hit may still be served until the subscriber is found silent (at most commandTimeoutMs
    // after its last answer), never "no session"; then every call rejects.
    for (;;) {
      const result = await store.get(sid).then((v) => ({ v }), (err: unknown) => ({ err }));
      if ("err" in result) {
        expect(result.err).toBeInstanceOf(SessionBackendUnavailableError);
        break;
      }
      expect(result.v).not.toBeNull();
    }
    for (const call of [() => store.get(sid), () => store.get(newSid()), () => store.set(newSid(), sessionData()), () => store.destroy(sid), () => store.length()]) {
      await expect(call()).rejects.toBeInstanceOf(SessionBackendUnavailableError);
    }
  });
});

async function counter(registry: Registry, name: string): Promise<number> {
  return (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function runNode(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-e", script], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && stdout === "") reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
