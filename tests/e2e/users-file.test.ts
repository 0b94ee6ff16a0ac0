/**
 * The users file under the built CLI and service: concurrent CLI runs lose no change (the file lock), and a
 * file that does not parse never has its content echoed (V8's JSON.parse message quotes it).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN_JS, removeTempDir, runNode, tempDir, USERS_CLI_JS, writeUsersFile } from "../helpers/service";

jest.setTimeout(300_000);

/** Generous on purpose: a CLI run is a second of CPU, the machine may be shared; only a hang should trip it. */
const RUN_LIMIT_MS = 120_000;
const cli = (args: string[], file: string, input = "") =>
  runNode(USERS_CLI_JS, args, {
    env: { BANGUI_USERS_FILE: file },
    input,
    timeoutMs: RUN_LIMIT_MS,
  });

let dir: string;
beforeAll(() => {
  dir = tempDir("users-file");
});
afterAll(() => {
  if (dir) removeTempDir(dir);
});

const usersIn = (file: string): string[] =>
  Object.keys((JSON.parse(readFileSync(file, "utf8")) as { users: Record<string, unknown> }).users).sort();

test("CLI runs at the same time lose no change: concurrent adds, then removes racing adds, several rounds", async () => {
  const file = join(dir, "concurrent.json");
  await writeUsersFile(file, { keep: "keep-password-1" });
  const expected = new Set(["keep"]);
  const ROUNDS = 2;
  const AT_ONCE = 6;
  for (let round = 0; round < ROUNDS; round++) {
    // Half the round removes users added by the previous round while the other half adds new ones.
    const removing = [...expected].filter((u) => u !== "keep").slice(0, AT_ONCE / 2);
    const adding = Array.from({ length: AT_ONCE - removing.length }, (_, i) => `u${round}-${i}`);
    const runs = [
      ...adding.map((u) => cli(["add", u], file, `${u}-password\n`)),
      ...removing.map((u) => cli(["remove", u], file)),
    ];
    const results = await Promise.all(runs);
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    for (const u of adding) expected.add(u);
    for (const u of removing) expected.delete(u);
    expect(usersIn(file)).toEqual([...expected].sort());
  }
  // No lock or temp file left behind.
  expect(readdirSync(dir).filter((n) => n.includes("concurrent.json") && n !== "concurrent.json")).toEqual([]);
});

describe("a users file that does not parse", () => {
  // A hand edit with single quotes: V8's message quotes the text at the fault ("...wordHash":'SECRET-s"...).
  const broken = `{"version":1,"users":{"alice":{"passwordHash":'SECRET-scrypt-hash',"credentialId":"c1"}}}`;
  let file: string;
  beforeAll(() => {
    file = join(dir, "broken.json");
    writeFileSync(file, broken, { mode: 0o600 });
  });

  test("the CLI says so without echoing the content, and changes nothing", async () => {
    for (const args of [["list"], ["add", "bob"], ["remove", "alice"]]) {
      const r = await cli(args, file, "bob-password-1\n");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("is not valid JSON");
      expect(`${r.stdout}${r.stderr}`).not.toContain("SECRET");
    }
    expect(readFileSync(file, "utf8")).toBe(broken);
  });

  test("the service refuses to start, without echoing the content in its log or on its console", async () => {
    const r = await runNode(MAIN_JS, [], { env: { BANGUI_USERS_FILE: file, BANGUI_PORT: "0" }, timeoutMs: RUN_LIMIT_MS });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("is not valid JSON");
    expect(r.stdout + r.stderr).not.toContain("SECRET");
  });
});
