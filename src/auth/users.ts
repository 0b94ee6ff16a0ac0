import { randomBytes } from "node:crypto";
import { watchFile, unwatchFile, type Stats } from "node:fs";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import type { Logger } from "../logger";
import { withFileLock } from "./file-lock";
import { hashPassword } from "./passwords";

/** Usernames: 1-64 characters of A-Z a-z 0-9 . _ @ - */
export const USERNAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;
/** Shortest password the users CLI accepts. */
export const MIN_PASSWORD_LENGTH = 8;

/** True when `name` is a valid username (`__proto__` excluded: the users map is a plain JSON object). */
export function isValidUsername(name: string): boolean {
  return USERNAME_RE.test(name) && name !== "__proto__";
}

const UserEntrySchema = z.object({
  passwordHash: z.string().min(1),
  /** Random, new at every password set: sessions keep the one of their login. */
  credentialId: z.string().min(1).max(128),
  updatedAt: z.string(),
});

const UsersFileSchema = z.object({
  version: z.literal(1),
  users: z.record(z.string().refine(isValidUsername, "invalid username"), UserEntrySchema),
});

type UsersFile = z.infer<typeof UsersFileSchema>;

/** One user as the store returns it. */
export interface UserRecord {
  username: string;
  passwordHash: string;
  credentialId: string;
  updatedAt: string;
}

/** Options of UserStore.open. */
export interface UserStoreOptions {
  /** Reload the file when it changes on disk (a CLI run, another process). @default true */
  watch?: boolean;
  /** Polling interval of the file watch. @default 300 */
  watchIntervalMs?: number;
  /** @default none (no logs) */
  logger?: Logger;
}

function emptyFile(): UsersFile {
  return { version: 1, users: {} };
}

async function readUsersFile(path: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyFile();
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // V8's SyntaxError quotes the text around the fault (password hashes): neither its message nor the
    // error itself (as a cause) may reach a log or the console.
    throw new Error(`users file ${path} is not valid JSON`);
  }
  const parsed = UsersFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`users file ${path} is not valid: ${parsed.error.issues[0]?.message ?? "bad shape"}`);
  return parsed.data;
}

/** Writes the file atomically: a 0600 temp file in the same directory, fsync, rename over the old one. */
async function writeUsersFile(path: string, data: UsersFile): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(data, null, 2)}\n`, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // fsync the directory so the rename itself is durable (best effort: not every platform allows it).
  const dirHandle = await open(dir, "r").catch(() => undefined);
  if (dirHandle) await dirHandle.sync().catch(() => undefined).finally(() => dirHandle.close());
}

/**
 * The users file (`BANGUI_USERS_FILE`): usernames with scrypt hashes and a credential id. Reads are
 * synchronous from memory; the file is reloaded when it changes on disk, so a password change or a
 * removal by the CLI ends the user's sessions in a running service (sessions carry the credential id).
 */
export class UserStore {
  private data: UsersFile = emptyFile();
  private watching = false;
  private reloading: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly logger: Logger | undefined,
  ) {}

  /** Loads the file (missing: no users) and, unless `watch: false`, follows its changes. */
  static async open(path: string, options: UserStoreOptions = {}): Promise<UserStore> {
    const store = new UserStore(path, options.logger);
    store.data = await readUsersFile(path);
    if (options.watch ?? true) {
      store.watching = true;
      watchFile(path, { interval: options.watchIntervalMs ?? 300, persistent: false }, store.onChange);
    }
    return store;
  }

  private readonly onChange = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    void this.reload().catch(() => undefined);
  };

  /** Reads the file again. A file that does not parse keeps the previous users (and logs a warning). */
  async reload(): Promise<void> {
    const run = async () => {
      try {
        this.data = await readUsersFile(this.path);
        this.logger?.info({ users: Object.keys(this.data.users).length }, "users file reloaded");
      } catch (err) {
        this.logger?.warn({ err }, "users file could not be reloaded; keeping the previous users");
        throw err;
      }
    };
    const previous = this.reloading ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.reloading = next;
    return next;
  }

  /** The user, or undefined. */
  get(username: string): UserRecord | undefined {
    const entry = Object.hasOwn(this.data.users, username) ? this.data.users[username] : undefined;
    return entry === undefined ? undefined : { username, ...entry };
  }

  /** The current credential id of a user (the session check's lookup: no allocation), or undefined. */
  credentialIdOf(username: string): string | undefined {
    return Object.hasOwn(this.data.users, username) ? this.data.users[username]?.credentialId : undefined;
  }

  /** Usernames, sorted. */
  list(): string[] {
    return Object.keys(this.data.users).sort();
  }

  /**
   * Adds the user or replaces its password (new hash, new credential id: the user's sessions end).
   * Re-reads the file first, so changes by other processes are kept.
   */
  async setPassword(username: string, password: string): Promise<UserRecord> {
    if (!isValidUsername(username)) throw new Error("invalid username: use 1-64 characters of A-Z a-z 0-9 . _ @ -");
    if (password.length === 0) throw new Error("the password must not be empty");
    const passwordHash = await hashPassword(password);
    const entry = { passwordHash, credentialId: randomBytes(16).toString("hex"), updatedAt: new Date().toISOString() };
    await this.change((data) => {
      data.users[username] = entry;
      return true;
    });
    return { username, ...entry };
  }

  /** Removes the user. @returns false when there was no such user. */
  async remove(username: string): Promise<boolean> {
    return this.change((data) => {
      if (!Object.hasOwn(data.users, username)) return false;
      delete data.users[username];
      return true;
    });
  }

  /**
   * Read, change, write under the file's lock: two processes changing the file at once (two CLI runs, a
   * CLI run and a service creating its first user) each see the other's change, and neither is lost.
   * `edit` returns whether it changed anything (else nothing is written).
   */
  private async change(edit: (data: UsersFile) => boolean): Promise<boolean> {
    return withFileLock(this.path, async () => {
      const data = await readUsersFile(this.path);
      const changed = edit(data);
      if (changed) await writeUsersFile(this.path, data);
      this.data = data;
      return changed;
    });
  }

  /** Stops following the file. Idempotent. */
  close(): void {
    if (this.watching) unwatchFile(this.path, this.onChange);
    this.watching = false;
  }
}

/** A random password of 24 base64url characters (144 bits). */
export function randomPassword(): string {
  return randomBytes(18).toString("base64url");
}

/**
 * Creates the users file with the user `admin` and a random password when the file does not exist.
 * The caller (main.ts) prints the password once; it is never logged.
 */
export async function ensureUsersFile(path: string): Promise<{ created: boolean; username?: string; password?: string }> {
  try {
    await readFile(path);
    return { created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const password = randomPassword();
  const passwordHash = await hashPassword(password);
  // Under the lock, and only if the file still does not exist: two services starting at once on a new
  // file create one admin, and the password printed by the other is never silently replaced.
  const created = await withFileLock(path, async () => {
    try {
      await readFile(path);
      return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const data = emptyFile();
    data.users.admin = { passwordHash, credentialId: randomBytes(16).toString("hex"), updatedAt: new Date().toISOString() };
    await writeUsersFile(path, data);
    return true;
  });
  return created ? { created, username: "admin", password } : { created: false };
}
