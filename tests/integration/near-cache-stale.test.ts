/**
 * Zero stale accepts under invalidation load (issue 11 item 6): while other instances log in and touch
 * sessions as fast as they can, one instance logs a session out and another checks it right after the
 * logout resolved, hundreds of times. The checker had the session in its local layer each time (asserted),
 * so only the near-cache's freshness rule stands between it and a stale accept.
 */
import Redis from "ioredis";
import type { NearCache, TrackingMode } from "../../src/cache";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeNear, nearHits, newId, session, uniquePrefix, until } from "./near-cache-helpers";

/** Rounds per tracking mode: the default mode gets the full run. */
const ROUNDS: Record<TrackingMode, number> = { default: 300, bcast: 50 };

let server: RedisServerHandle;
let admin: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

/** Logins (SET) and touches (SET XX) of other users from `instances`, until stop(); bounded in flight. */
function loadFrom(instances: NearCache[]): { stop(): Promise<number> } {
  let running = true;
  let writes = 0;
  const loops = instances.flatMap((near) =>
    Array.from({ length: 8 }, async () => {
      const mine: string[] = [];
      while (running) {
        const id = newId();
        await near.set(id, session("load"), 60);
        mine.push(id);
        if (mine.length > 20) mine.shift();
        await near.update(mine[writes % mine.length]!, session("load", { lastSeenAt: Date.now() }), 60);
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

describe.each<TrackingMode>(["default", "bcast"])("near-cache (strict freshness, %s tracking) under invalidation load", (mode) => {
  it(`a check right after a logout on another instance never accepts the session (${ROUNDS[mode]} rounds)`, async () => {
    const prefix = uniquePrefix();
    const loggingOut = makeNear(server.url, prefix, { trackingMode: mode });
    const checking = makeNear(server.url, prefix, { trackingMode: mode });
    const others = [makeNear(server.url, prefix, { trackingMode: mode }), makeNear(server.url, prefix, { trackingMode: mode })];
    const all = [loggingOut, checking, ...others];
    try {
      await until(() => all.every((n) => n.tracking), "tracking on every instance");
      const load = loadFrom(others);
      let stale = 0;
      for (let round = 0; round < ROUNDS[mode]; round++) {
        const id = newId();
        await loggingOut.set(id, session(`user${round}`), 60);
        // The checker serves it from its local layer (the SET's own invalidation may void a first fill).
        let cached = false;
        for (let read = 0; read < 100 && !cached; read++) {
          const hits = await nearHits(checking);
          expect(await checking.get(id)).not.toBeNull();
          cached = (await nearHits(checking)) === hits + 1;
        }
        expect(cached).toBe(true);
        await loggingOut.invalidate(id);
        if ((await checking.get(id)) !== null) stale++;
      }
      const writes = await load.stop();
      expect(stale).toBe(0);
      expect(writes).toBeGreaterThan(ROUNDS[mode]); // the load really ran alongside
    } finally {
      await Promise.all(all.map((n) => n.close()));
    }
  }, 60_000);
});
