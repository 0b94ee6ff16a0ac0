import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Redis from "ioredis";
import { RedisSessionCache, type Session } from "../../src/cache";
import { verifyPassword } from "../../src/auth/passwords";
import { freePort, startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

const ROOT = resolve(__dirname, "../..");
const BUILT = join(ROOT, "dist/src/auth/users-cli.js");

function newestSource(dirPath: string): number {
  let newest = 0;
  for (const entry of readdirSync(dirPath, { withFileTypes: true })) {
    const p = join(dirPath, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** The built CLI when it is newer than every source file (`npm test` builds first), else the source via ts-node. */
const COMMAND: string[] =
  existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestSource(join(ROOT, "src"))
    ? [BUILT]
    : ["-r", "ts-node/register/transpile-only", join(ROOT, "src/auth/users-cli.ts")];
let dir: string;
let usersFile: string;
let server: RedisServerHandle;

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bangui-cli-"));
  usersFile = join(dir, "users.json");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI from source (ts-node, transpile only) with stdin and env; resolves with its outputs. */
function cli(args: string[], stdin = "", env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...COMMAND, ...args], {
      env: { PATH: process.env.PATH ?? "", BANGUI_USERS_FILE: usersFile, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

const users = () => JSON.parse(readFileSync(usersFile, "utf8")).users as Record<string, { passwordHash: string; credentialId: string }>;

test("add reads the password from the first line of stdin, never echoes it, and list shows the user", async () => {
  const res = await cli(["add", "alice"], "first-line-password\nsecond line\n");
  expect(res.code).toBe(0);
  expect(res.stdout + res.stderr).not.toContain("first-line-password");
  expect(await verifyPassword("first-line-password", users().alice!.passwordHash)).toBe(true);
  const list = await cli(["list"]);
  expect(list.code).toBe(0);
  expect(list.stdout).toBe("alice\n");
});

test("add of an existing user replaces the password and the credential id; remove deletes it", async () => {
  expect((await cli(["add", "bob"], "password-one\n")).code).toBe(0);
  const before = users().bob!.credentialId;
  expect((await cli(["add", "bob"], "password-two\n")).code).toBe(0);
  expect(users().bob!.credentialId).not.toBe(before);
  expect(await verifyPassword("password-two", users().bob!.passwordHash)).toBe(true);
  const removed = await cli(["remove", "bob"]);
  expect(removed.code).toBe(0);
  expect(users().bob).toBeUndefined();
  const again = await cli(["remove", "bob"]);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain("no user bob");
});

test.each([
  ["no command", [], ""],
  ["an unknown command", ["rename", "x"], ""],
  ["a missing username", ["add"], "password-123\n"],
  ["an invalid username", ["add", "bad name"], "password-123\n"],
  ["an empty password", ["add", "carol"], "\n"],
  ["no stdin at all", ["add", "carol"], ""],
  ["a password under 8 characters", ["add", "carol"], "short\n"],
])("exits 2 with a message on stderr for %s, and writes nothing", async (_name, args, stdin) => {
  const res = await cli(args, stdin);
  expect(res.code).toBe(2);
  expect(res.stderr.length).toBeGreaterThan(10);
  if (stdin.trim() !== "") expect(res.stderr).not.toContain(stdin.trim());
  expect(() => readFileSync(usersFile)).toThrow();
});

test("exits 1 naming the variable when the configuration is invalid", async () => {
  const res = await cli(["list"], "", { BANGUI_SESSION_TTL_SECONDS: "-5" });
  expect(res.code).toBe(1);
  expect(res.stderr).toContain("BANGUI_SESSION_TTL_SECONDS");
});

describe("with BANGUI_REDIS_URL", () => {
  const session = (username: string): Session => ({ username, createdAt: Date.now(), expiresAt: Date.now() + 60_000, lastSeenAt: Date.now(), credentialId: "x" });

  test("a password change and a removal delete the user's sessions from Redis at once", async () => {
    const prefix = `cli${Date.now()}:`;
    const cache = new RedisSessionCache({ client: new Redis(server.url, { maxRetriesPerRequest: 1 }), keyPrefix: prefix });
    try {
      const env = { BANGUI_REDIS_URL: server.url, BANGUI_KEY_PREFIX: prefix };
      expect((await cli(["add", "dave"], "password-one\n", env)).code).toBe(0);
      await cache.set("a".repeat(64), session("dave"), 60);
      await cache.set("b".repeat(64), session("dave"), 60);
      await cache.set("c".repeat(64), session("erin"), 60);
      const changed = await cli(["add", "dave"], "password-two\n", env);
      expect(changed.code).toBe(0);
      expect(await cache.listUserSessions("dave")).toEqual([]);
      expect(await cache.get("a".repeat(64))).toBeNull();
      expect(await cache.get("c".repeat(64))).not.toBeNull();
      await cache.set("d".repeat(64), session("dave"), 60);
      expect((await cli(["remove", "dave"], "", env)).code).toBe(0);
      expect(await cache.get("d".repeat(64))).toBeNull();
    } finally {
      await cache.close();
    }
  });

  test("an unreachable Redis still updates the file, exits 0 and says so on stderr", async () => {
    const port = await freePort();
    const env = { BANGUI_REDIS_URL: `redis://127.0.0.1:${port}`, BANGUI_REDIS_CONNECT_TIMEOUT_MS: "300" };
    expect((await cli(["add", "frank"], "password-one\n", env)).code).toBe(0);
    const before = users().frank!.credentialId;
    const res = await cli(["add", "frank"], "password-two\n", env);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/redis is unreachable/);
    expect(users().frank!.credentialId).not.toBe(before);
  });
});
