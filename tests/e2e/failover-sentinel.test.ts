/**
 * The built service (two workers) on a Sentinel topology, configured by BANGUI_REDIS_URL alone. Sessions
 * are created, some logged out (204); the master is SIGKILLed. Until the sentinels promote the replica
 * the service answers 503 (never 200 for a session it cannot check, never 204 for a logout it cannot
 * make), then 200 again by itself; every session logged out before the kill is still 401 afterwards.
 */
import { join } from "node:path";
import { command } from "../helpers/redis-process";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { reportTiming } from "../helpers/scale-out";
import {
  eventually,
  http,
  PATIENCE_MS,
  login,
  removeTempDir,
  startService,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(300_000);

let topo: SentinelTopology;
let service: ServiceHandle | undefined;
let dir: string;

const check = (token: string) => http(service!.url, "GET", "/api/auth/session", { token, timeoutMs: 5000 });

beforeAll(async () => {
  dir = tempDir("failover-sentinel");
  await writeUsersFile(join(dir, "users.json"), { alice: "alice-password-1", bob: "bob-password-1", carol: "carol-password-1" });
  topo = await startSentinelTopology();
  service = await startService({
    env: {
      BANGUI_REDIS_URL: topo.url,
      BANGUI_WORKERS: "2",
      BANGUI_USERS_FILE: join(dir, "users.json"),
      BANGUI_KEY_PREFIX: "e2e-failover:",
      BANGUI_REDIS_WAIT_REPLICAS: "auto",
      BANGUI_REDIS_WAIT_TIMEOUT_MS: "500",
      BANGUI_REDIS_COMMAND_TIMEOUT_MS: "500",
    },
  });
});

afterAll(async () => {
  await service?.stop().catch(() => service?.kill());
  await topo?.stop();
  if (dir) removeTempDir(dir);
});

test("a Sentinel failover: 503 while there is no master, 200 again by itself, logouts still 401", async () => {
  const [a1, a2, a3, b1, b2, c1] = [
    await login(service!.url, "alice", "alice-password-1"),
    await login(service!.url, "alice", "alice-password-1"),
    await login(service!.url, "alice", "alice-password-1"),
    await login(service!.url, "bob", "bob-password-1"),
    await login(service!.url, "bob", "bob-password-1"),
    await login(service!.url, "carol", "carol-password-1"),
  ];
  expect((await http(service!.url, "POST", "/api/auth/logout", { token: a1 })).status).toBe(204);
  expect((await http(service!.url, "POST", "/api/auth/logout", { token: a2 })).status).toBe(204);
  expect((await http(service!.url, "POST", "/api/auth/logout-all", { token: b1 })).status).toBe(204);
  const loggedOut = [a1!, a2!, b1!, b2!];
  const live = [a3!, c1!];
  for (const t of loggedOut) expect((await check(t)).status).toBe(401);
  for (const t of live) expect((await check(t)).status).toBe(200);
  // The logins are on the replica too (logins do not wait; this test is about logouts).
  const master = await topo.currentMaster();
  // WAIT 1 0: until the replica has them, however long that takes on a loaded machine.
  expect(Number(await command(master.port, ["WAIT", "1", "0"]))).toBe(1);

  const killedAt = Date.now();
  await topo.killMaster();

  // Without a master a logout cannot be made: 503, never a 204 the client would trust.
  const logoutDuringOutage = await http(service!.url, "POST", "/api/auth/logout", { token: c1 });
  expect(logoutDuringOutage.status).toBe(503);

  const seen: Array<{ ms: number; live: number; loggedOut: number }> = [];
  let firstOkMs = -1;
  // Until the first 200: only a hang of the failover reaches PATIENCE_MS.
  while (Date.now() - killedAt < PATIENCE_MS) {
    const [l, d] = await Promise.all([check(a3!), check(a1!)]);
    seen.push({ ms: Date.now() - killedAt, live: l.status, loggedOut: d.status });
    if (l.status === 200) {
      firstOkMs = Date.now() - killedAt;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  reportTiming("sentinel failover, HTTP service, kill -> first 200", firstOkMs);

  expect(firstOkMs).toBeGreaterThan(0);
  // Only 503 (fail closed) before the first 200 for the live session; a logged-out one never 200.
  expect(seen.filter((s) => s.live !== 503 && s.live !== 200)).toEqual([]);
  expect(seen.filter((s) => s.loggedOut !== 503 && s.loggedOut !== 401)).toEqual([]);
  expect(seen.filter((s) => s.live === 503).length).toBeGreaterThan(0);
  expect(await topo.currentMaster()).not.toBe(master);

  // Every worker follows the promotion by itself; then every answer is as before the kill.
  expect(await eventually(async () => (await http(service!.url, "GET", "/readyz")).status === 200)).toBe(true);
  for (const t of live) {
    expect(await eventually(async () => (await check(t)).status === 200)).toBe(true);
  }
  for (let round = 0; round < 3; round++) {
    for (const t of loggedOut) expect((await check(t)).status).toBe(401);
    for (const t of live) expect((await check(t)).status).toBe(200);
  }
  // The logout refused during the outage can be made now.
  expect((await http(service!.url, "POST", "/api/auth/logout", { token: c1 })).status).toBe(204);
  expect((await check(c1!)).status).toBe(401);
});
