/** BANGUI_SESSIONS_FILE on disk: what it holds, its mode, and what loading keeps, drops or refuses. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemorySessionCache } from "../../src/cache/memory";
import { loadSessionsFile, saveSessionsFile, SessionsFile } from "../../src/cache/sessions-file";
import { ConfigError } from "../../src/errors";
import { newId, newSession } from "../contract/session-cache.contract";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bangui-sessions-file-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("a clean save round-trips every live session with its remaining TTL; expired ones are dropped", async () => {
  const store = new InMemorySessionCache();
  const live = newId();
  const short = newId();
  await store.set(live, newSession("alice", 600, { ip: "10.0.0.1", credentialId: "cred-1" }), 600);
  await store.set(short, newSession("bob"), 60);
  const file = join(dir, "sub", "sessions.json");
  expect(await saveSessionsFile(file, store, true)).toBe(2);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readdirSync(join(dir, "sub"))).toEqual(["sessions.json"]); // no temp file left

  const again = new InMemorySessionCache();
  // 120 s later: bob's 60 s TTL is over, alice's session is kept with what is left of hers.
  const result = await loadSessionsFile(file, again, Date.now() + 120_000);
  expect(result).toEqual({ loaded: 1, expired: 1, discarded: 0 });
  expect(await again.get(live)).toEqual(await store.get(live));
  expect(again.remainingTtlMs(live)).toBeLessThanOrEqual(480_000 + 1000);
  expect(await again.get(short)).toBeNull();
  expect((await again.listUserSessions("alice")).map((s) => s.id)).toEqual([live]);
});

test("a file not written by a graceful stop is not loaded: a crash must not bring back a logged-out session", async () => {
  const store = new InMemorySessionCache();
  await store.set(newId(), newSession("alice"), 600);
  const file = join(dir, "sessions.json");
  const persist = await new SessionsFile({ path: file, store, changes: () => 0 }).start();
  // Running (no close): what is on disk is marked unclean.
  expect(JSON.parse(readFileSync(file, "utf8")).clean).toBe(false);
  expect(await loadSessionsFile(file, new InMemorySessionCache())).toEqual({ loaded: 0, expired: 0, discarded: 1 });
  await persist.close();
  expect(JSON.parse(readFileSync(file, "utf8")).clean).toBe(true);
  expect(await loadSessionsFile(file, new InMemorySessionCache())).toEqual({ loaded: 1, expired: 0, discarded: 0 });
});

test("periodic saves happen only when something changed", async () => {
  const store = new InMemorySessionCache();
  let changes = 0;
  const file = join(dir, "sessions.json");
  const persist = new SessionsFile({ path: file, store, changes: () => changes });
  await persist.saveIfChanged();
  expect(() => statSync(file)).toThrow(); // nothing changed, nothing written
  await store.set(newId(), newSession("alice"), 600);
  changes++;
  await persist.saveIfChanged();
  expect(JSON.parse(readFileSync(file, "utf8")).sessions).toHaveLength(1);
});

test.each([
  ["not JSON", "this is not json {"],
  ["foreign JSON", JSON.stringify({ version: 1, users: {} })],
  ["a wrong id", JSON.stringify({ format: "bangui-sessions", version: 1, savedAt: 1, clean: true, sessions: [{ id: "x", ttlEndsAt: 1, session: {} }] })],
])("a file that is %s is refused with a ConfigError naming BANGUI_SESSIONS_FILE, without its content", async (_what, content) => {
  const file = join(dir, "sessions.json");
  writeFileSync(file, content.replace("{", '{"secret":"do-not-echo",'));
  const err = await loadSessionsFile(file, new InMemorySessionCache()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toContain("BANGUI_SESSIONS_FILE");
  expect((err as Error).message).not.toContain("do-not-echo");
});

test("a missing file is an empty start", async () => {
  expect(await loadSessionsFile(join(dir, "none.json"), new InMemorySessionCache())).toEqual({ loaded: 0, expired: 0, discarded: 0 });
});
