import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyPassword } from "../../src/auth/passwords";
import { ensureUsersFile, isValidUsername, UserStore } from "../../src/auth/users";

let dir: string;
const stores: UserStore[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bangui-users-"));
});
afterEach(() => {
  stores.splice(0).forEach((s) => s.close());
  rmSync(dir, { recursive: true, force: true });
});

async function openStore(path: string, watch = false): Promise<UserStore> {
  const s = await UserStore.open(path, { watch, watchIntervalMs: 50 });
  stores.push(s);
  return s;
}

test("ensureUsersFile creates admin with a random password of 24+ characters, once", async () => {
  const path = join(dir, "sub", "users.json");
  const first = await ensureUsersFile(path);
  expect(first.created).toBe(true);
  expect(first.username).toBe("admin");
  expect(first.password!.length).toBeGreaterThanOrEqual(24);
  const store = await openStore(path);
  expect(store.list()).toEqual(["admin"]);
  expect(await verifyPassword(first.password!, store.get("admin")!.passwordHash)).toBe(true);
  expect(readFileSync(path, "utf8")).not.toContain(first.password!);
  expect(await ensureUsersFile(path)).toEqual({ created: false });
  const other = await ensureUsersFile(join(dir, "other.json"));
  expect(other.password).not.toBe(first.password);
});

test("the file has the documented shape, mode 0600, and no temp file is left behind", async () => {
  const path = join(dir, "users.json");
  const store = await openStore(path);
  await store.setPassword("carol@example.org", "password-1");
  const data = JSON.parse(readFileSync(path, "utf8"));
  expect(data).toEqual({
    version: 1,
    users: { "carol@example.org": { passwordHash: expect.stringMatching(/^scrypt\$/), credentialId: expect.any(String), updatedAt: expect.any(String) } },
  });
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir)).toEqual(["users.json"]);
});

test("setting a password changes the credential id every time, remove deletes the user", async () => {
  const path = join(dir, "users.json");
  const store = await openStore(path);
  const a = await store.setPassword("dave", "password-1");
  const b = await store.setPassword("dave", "password-1");
  expect(a.credentialId).not.toBe(b.credentialId);
  expect(store.get("dave")!.credentialId).toBe(b.credentialId);
  expect(await store.remove("dave")).toBe(true);
  expect(store.get("dave")).toBeUndefined();
  expect(await store.remove("dave")).toBe(false);
});

test("writes are atomic: a reader never sees a partial file while many writes happen", async () => {
  const path = join(dir, "users.json");
  const store = await openStore(path);
  await store.setPassword("erin", "password-0");
  let reads = 0;
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      const text = readFileSync(path, "utf8");
      expect(() => JSON.parse(text)).not.toThrow();
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let i = 0; i < 15; i++) await store.setPassword(`user${i}`, `password-${i}`);
  stop = true;
  await reader;
  expect(reads).toBeGreaterThan(0);
  expect(store.list()).toHaveLength(16);
});

test("another store on the same file sees changes after reload(), and by itself through the file watch", async () => {
  const path = join(dir, "users.json");
  const writer = await openStore(path);
  await writer.setPassword("frank", "password-1");
  const manual = await openStore(path, false);
  const watching = await openStore(path, true);
  const before = watching.get("frank")!.credentialId;
  await writer.setPassword("frank", "password-2");
  expect(manual.get("frank")!.credentialId).toBe(before);
  await manual.reload();
  expect(manual.get("frank")!.credentialId).not.toBe(before);
  const deadline = Date.now() + 5000;
  while (watching.get("frank")!.credentialId === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(watching.get("frank")!.credentialId).toBe(manual.get("frank")!.credentialId);
  await writer.remove("frank");
  while (watching.get("frank") !== undefined && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
  expect(watching.get("frank")).toBeUndefined();
});

test("a corrupt file on reload keeps the previous users; a missing file at open means no users", async () => {
  const path = join(dir, "users.json");
  const store = await openStore(path);
  expect(store.list()).toEqual([]);
  await store.setPassword("gina", "password-1");
  writeFileSync(path, "{ not json");
  await expect(store.reload()).rejects.toThrow();
  expect(store.get("gina")).toBeDefined();
  writeFileSync(path, JSON.stringify({ version: 2, users: {} }));
  await expect(store.reload()).rejects.toThrow(/not valid/);
  expect(store.get("gina")).toBeDefined();
});

test("usernames are 1-64 characters of A-Z a-z 0-9 . _ @ -", async () => {
  for (const ok of ["a", "alice", "a.b_c-d@e", "x".repeat(64)]) expect(isValidUsername(ok)).toBe(true);
  for (const bad of ["", "x".repeat(65), "a b", "a/b", "ä", "a:b", "__proto__"]) expect(isValidUsername(bad)).toBe(false);
  const store = await openStore(join(dir, "users.json"));
  await expect(store.setPassword("a b", "password-1")).rejects.toThrow(/invalid username/);
  await expect(store.setPassword("__proto__", "password-1")).rejects.toThrow(/invalid username/);
  expect(store.get("__proto__")).toBeUndefined();
  expect(store.get("constructor")).toBeUndefined();
  await store.setPassword("constructor", "password-1");
  expect(store.list()).toEqual(["constructor"]);
  expect(store.get("constructor")!.username).toBe("constructor");
});

test("a running store whose file stops parsing keeps its users and logs the failure without the file's content", async () => {
  const { Writable } = await import("node:stream");
  const { createLogger } = await import("../../src/logger");
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const path = join(dir, "users.json");
  const writer = await openStore(path);
  await writer.setPassword("erin", "password-1");
  const store = await UserStore.open(path, { watch: false, logger: createLogger("debug", sink) });
  stores.push(store);
  writeFileSync(path, `{"version":1,"users":{"erin":{"passwordHash":'SECRET-hash',"credentialId":"c"}}}`);
  await expect(store.reload()).rejects.toThrow(/is not valid JSON$/);
  expect(store.list()).toEqual(["erin"]);
  expect(lines.join("")).toContain("users file could not be reloaded");
  expect(lines.join("")).not.toContain("SECRET");
});

describe("the users file lock", () => {
  const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
  const { hostname } = require("node:os") as typeof import("node:os");

  test("a lock left by a process that died is broken, and the change goes through", async () => {
    const path = join(dir, "users.json");
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: dead, host: hostname(), nonce: "n" }));
    const store = await openStore(path);
    await store.setPassword("frank", "password-1");
    expect(store.list()).toEqual(["frank"]);
    expect(readdirSync(dir)).toEqual(["users.json"]);
  });

  test("a lock held by a live process is waited for, then refused naming the lock file; nothing is written", async () => {
    const { withFileLock } = await import("../../src/auth/file-lock");
    const path = join(dir, "users.json");
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), nonce: "n" }));
    let ran = false;
    const attempt = withFileLock(path, async () => {
      ran = true;
    }, { acquireTimeoutMs: 50 });
    await expect(attempt).rejects.toThrow(`${path}.lock`);
    expect(ran).toBe(false);
  });
});
