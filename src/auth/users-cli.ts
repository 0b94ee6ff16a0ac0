/**
 * The users CLI: `npm run --silent users -- add <name> | remove <name> | list`.
 * `add` reads the password from the first line of standard input (never echoed, never logged) and adds
 * the user or replaces its password. A password change or a removal gives the user a new credential id
 * (or none), which every running service sees in the file and so rejects the user's sessions; with
 * `BANGUI_REDIS_URL` the user's sessions are also deleted from Redis at once.
 * Exit codes: 0 done, 1 failure (file or Redis), 2 usage error.
 */
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { createSessionBackend } from "../cache";
import { loadConfig, type Config } from "../config";
import { silentLogger } from "../logger";
import { isValidUsername, MIN_PASSWORD_LENGTH, UserStore } from "./users";

const USAGE = `usage: users add <username>      (password: first line of stdin, at least ${MIN_PASSWORD_LENGTH} characters)
       users remove <username>
       users list`;

class UsageError extends Error {}

async function readFirstLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) return line.replace(/\r$/, "");
    return "";
  } finally {
    rl.close();
  }
}

/** Deletes the user's sessions from Redis now; the credential check in the file already rejects them. */
async function endSessionsInRedis(config: Config, username: string): Promise<void> {
  if (config.redis === undefined) return;
  const backend = createSessionBackend(config, { logger: silentLogger() });
  try {
    // Ready means both connections answer: the data connection and the one removals (and their WAIT) use;
    // a removal sent before the latter is up would fail (no offline queue).
    const deadline = Date.now() + config.redisConnectTimeoutMs + config.redisCommandTimeoutMs;
    for (;;) {
      try {
        await backend.cache.ping();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
    const removed = await backend.cache.invalidateUser(username);
    process.stderr.write(`ended ${removed} session(s) of ${username} in redis\n`);
  } catch {
    process.stderr.write(
      `warning: redis is unreachable, so the sessions of ${username} could not be deleted there now; ` +
        "running services reject them anyway (the credential check sees the changed users file)\n",
    );
  } finally {
    await backend.close().catch(() => undefined);
  }
}

function nameArg(args: string[]): string {
  const name = args[1];
  if (name === undefined || args.length !== 2) throw new UsageError(USAGE);
  if (!isValidUsername(name)) throw new UsageError("invalid username: use 1-64 characters of A-Z a-z 0-9 . _ @ -");
  return name;
}

async function run(args: string[]): Promise<number> {
  const command = args[0];
  if (command === undefined || !["add", "remove", "list"].includes(command)) throw new UsageError(USAGE);
  const config = loadConfig(process.env);
  if (command === "list") {
    if (args.length !== 1) throw new UsageError(USAGE);
    const store = await UserStore.open(config.usersFile, { watch: false });
    for (const name of store.list()) process.stdout.write(`${name}\n`);
    return 0;
  }
  const username = nameArg(args);
  if (command === "add") {
    const password = await readFirstLine();
    if (password.length === 0) throw new UsageError("no password: write it as the first line of standard input");
    if (password.length < MIN_PASSWORD_LENGTH) {
      throw new UsageError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    const store = await UserStore.open(config.usersFile, { watch: false });
    const existed = store.get(username) !== undefined;
    await store.setPassword(username, password);
    process.stderr.write(existed ? `password of ${username} changed\n` : `user ${username} added\n`);
    if (existed) await endSessionsInRedis(config, username);
    return 0;
  }
  const store = await UserStore.open(config.usersFile, { watch: false });
  if (!(await store.remove(username))) {
    process.stderr.write(`no user ${username}\n`);
    return 1;
  }
  process.stderr.write(`user ${username} removed\n`);
  await endSessionsInRedis(config, username);
  return 0;
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  },
);
