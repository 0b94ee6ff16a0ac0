/**
 * Soak finding (seed 102, topology sentinel): after a SIGKILL of the master, both workers of one
 * instance kept 503ing for minutes while the other instance followed the promotion. Mechanism (ioredis
 * 6 with `failoverDetector: true`): the detector of the last connection stays subscribed to
 * +switch-master while the client reconnects; when the message arrives while a reconnect attempt is
 * still waiting for a sentinel's answer (slow sentinels on a loaded machine), the detector's
 * `connector.disconnect()` makes that attempt fail with "Connection is closed." and the client ends for
 * good. Here a sentinel is kept slow (SIGSTOP) during the failover so the window is certain.
 */
import { Redis } from "ioredis";
import { createRedisClient } from "../../src/cache/factory";
import { parseRedisUrl } from "../../src/redis-url";
import { command } from "../helpers/redis-process";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";

let topo: SentinelTopology;
const clients: Redis[] = [];

beforeAll(async () => {
  topo = await startSentinelTopology();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await topo?.stop();
});

/** A plain subscriber to +switch-master on one sentinel; resolves `heard` on the first message. */
async function listenForSwitch(port: number): Promise<{ heard: Promise<void>; client: Redis }> {
  const client = new Redis({ host: "127.0.0.1", port, retryStrategy: () => 100 });
  client.on("error", () => {
    // it reconnects; only its messages matter
  });
  clients.push(client);
  const heard = new Promise<void>((resolve) => client.once("message", () => resolve()));
  await client.subscribe("+switch-master");
  return { heard, client };
}

test("a +switch-master heard while a reconnect waits on a slow sentinel does not end the client", async () => {
  // Slow, not hung: the stopped sentinel answers within the connect timeout (which bounds sentinel queries).
  const client = createRedisClient(parseRedisUrl(topo.url), {
    redisCommandTimeoutMs: 500,
    redisConnectTimeoutMs: 120_000,
  }) as Redis;
  clients.push(client);
  // The detector subscribes once the stream connects, before the client is ready: wait for both.
  const subscribed = new Promise<void>((resolve) => client.once("failoverSubscribed", () => resolve()));
  const ready = new Promise<void>((resolve) => client.once("ready", () => resolve()));
  const errors: string[] = [];
  client.on("error", (err: Error) => errors.push(err.message));
  await Promise.all([subscribed, ready]);
  expect(await client.set("k", "before")).toBe("OK");

  // The client resolved the master from the first sentinel, and asks it first again on reconnect.
  const slow = topo.sentinels[0]!;
  const others = await Promise.all(topo.sentinels.slice(1).map((s) => listenForSwitch(s.port)));
  const oldMaster = await topo.currentMaster();
  slow.signal("SIGSTOP");
  try {
    await oldMaster.kill();
    // The two live sentinels promote the replica and publish +switch-master, heard by the client's
    // failover detector while its reconnect is still waiting for the stopped sentinel.
    await Promise.all(others.map((o) => o.heard));
  } finally {
    slow.signal("SIGCONT");
  }

  // Polled, generous bound: the sentinels answer again, so the client must reach the new master.
  const deadline = Date.now() + 60_000;
  let answered = false;
  let last = "";
  while (!answered && Date.now() < deadline) {
    try {
      answered = (await client.set("k", "after")) === "OK";
    } catch (err) {
      last = `${(err as Error).message} (status ${client.status})`;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  expect({ answered, last, ended: errors.includes("Connection is closed.") }).toEqual({
    answered: true,
    last,
    ended: false,
  });
  // The old master is dead: the write landed on the promoted replica.
  const newMaster = await topo.waitForFailover(oldMaster);
  expect(await command(newMaster.port, ["GET", "k"])).toBe("after");
});

test("a sentinel that stays hung does not keep the client from the promoted master", async () => {
  const own = await startSentinelTopology();
  try {
    const client = createRedisClient(parseRedisUrl(own.url), {
      redisCommandTimeoutMs: 500,
      redisConnectTimeoutMs: 2000,
    }) as Redis;
    clients.push(client);
    await new Promise<void>((resolve) => client.once("ready", () => resolve()));
    const oldMaster = await own.currentMaster();
    // The first sentinel, asked first on every reconnect, accepts connections but never answers.
    own.sentinels[0]!.signal("SIGSTOP");
    await oldMaster.kill();
    const deadline = Date.now() + 60_000;
    let answered = false;
    let last = "";
    while (!answered && Date.now() < deadline) {
      try {
        answered = (await client.set("k", "after")) === "OK";
      } catch (err) {
        last = `${(err as Error).message} (status ${client.status})`;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect({ answered, last }).toEqual({ answered: true, last });
  } finally {
    await own.stop();
  }
});
