/**
 * `BANGUI_SESSIONS_FILE`: the sessions of the memory and ipc backends kept across a restart. The file
 * holds session ids (SHA-256 of the tokens, never a token) and session data; it is written atomically
 * (temp file with mode 0600, fsync, rename) on shutdown and every few seconds while there are changes,
 * and read at start, where expired sessions are dropped and a file that is not ours is refused.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { ConfigError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import type { InMemorySessionCache } from "./memory";
import { SessionSchema, type IndexedSession, type Session, type SessionCache } from "./types";

const FORMAT = "bangui-sessions";
const VERSION = 1;

const FileSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  savedAt: z.number().int().nonnegative(),
  /** True only when written by a graceful stop: a periodic save may predate logouts a crash then lost. */
  clean: z.boolean(),
  sessions: z.array(
    z.object({
      id: z.string().regex(/^[0-9a-f]{64}$/),
      /** When the entry's TTL ends (epoch ms): the downtime counts. */
      ttlEndsAt: z.number().int().nonnegative(),
      session: SessionSchema,
    }),
  ),
});

/** Options of SessionsFile. */
export interface SessionsFileOptions {
  path: string;
  /** The store to load into and save from. */
  store: InMemorySessionCache;
  /** Writes applied so far; a periodic save happens only when it moved. */
  changes: () => number;
  /** How often to check for changes. @default 5_000 */
  intervalMs?: number;
  /** @default a silent logger */
  logger?: Logger;
}

/**
 * Reads the file into `store` (a missing file is an empty start). A file not written by a graceful stop
 * (the service crashed after a periodic save) is not loaded: it may hold sessions whose logout came
 * after that save, and no logged-out token may come back. @returns how many sessions were loaded, how
 * many were dropped as expired, and how many were discarded because the last stop was not clean.
 * @throws ConfigError naming BANGUI_SESSIONS_FILE when the file cannot be read or is not a sessions file
 */
export async function loadSessionsFile(
  path: string,
  store: InMemorySessionCache,
  now = Date.now(),
): Promise<{ loaded: number; expired: number; discarded: number }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { loaded: 0, expired: 0, discarded: 0 };
    throw new ConfigError(`BANGUI_SESSIONS_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Never echo the content (JSON.parse's message quotes it).
    throw new ConfigError(
      `BANGUI_SESSIONS_FILE: ${path} is not JSON, so not a sessions file of this service; move it away (the service then starts with no sessions) or point BANGUI_SESSIONS_FILE elsewhere`,
    );
  }
  const parsed = FileSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(
      `BANGUI_SESSIONS_FILE: ${path} is not a sessions file of this service (format ${FORMAT} version ${VERSION}); move it away (the service then starts with no sessions) or point BANGUI_SESSIONS_FILE elsewhere`,
    );
  }
  if (!parsed.data.clean) return { loaded: 0, expired: 0, discarded: parsed.data.sessions.length };
  let loaded = 0;
  let expired = 0;
  for (const entry of parsed.data.sessions) {
    const ttlMs = Math.min(entry.ttlEndsAt, entry.session.expiresAt) - now;
    if (ttlMs < 1) {
      expired++;
      continue;
    }
    await store.set(entry.id, entry.session, ttlMs / 1000);
    loaded++;
  }
  return { loaded, expired, discarded: 0 };
}

/** Writes every live session of `store` to `path` atomically, mode 0600; `clean` only from a graceful stop. */
export async function saveSessionsFile(path: string, store: InMemorySessionCache, clean: boolean, now = Date.now()): Promise<number> {
  const sessions = store.snapshot().map((e) => ({ id: e.id, ttlEndsAt: now + Math.floor(e.ttlMs), session: e.session }));
  const body = JSON.stringify({ format: FORMAT, version: VERSION, savedAt: now, clean, sessions });
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(body, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(tmp, 0o600); // the umask could have narrowed it, never widened: be explicit anyway
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return sessions.length;
}

/** Periodic and final saves of one store. */
export class SessionsFile {
  private readonly options: SessionsFileOptions;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private savedChanges: number;
  private saving: Promise<void> = Promise.resolve();

  constructor(options: SessionsFileOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger();
    this.savedChanges = options.changes();
  }

  /** Saves now when something changed since the last save. */
  saveIfChanged(): Promise<void> {
    if (this.options.changes() === this.savedChanges) return this.saving;
    return this.save(false);
  }

  /** Saves now (one save at a time); `clean` marks the final save of a graceful stop. */
  save(clean: boolean): Promise<void> {
    this.saving = this.saving.then(async () => {
      const changes = this.options.changes();
      try {
        const count = await saveSessionsFile(this.options.path, this.options.store, clean);
        this.savedChanges = changes;
        this.logger.debug({ path: this.options.path, sessions: count }, "sessions file saved");
      } catch (err) {
        this.logger.error({ err: { code: (err as NodeJS.ErrnoException).code, message: (err as Error).message }, path: this.options.path }, "sessions file not saved");
      }
    });
    return this.saving;
  }

  /**
   * Marks the file unclean at once (the service now runs: a crash from here on may lose logouts) and
   * starts the periodic save.
   */
  async start(): Promise<this> {
    await this.save(false);
    this.timer = setInterval(() => void this.saveIfChanged(), this.options.intervalMs ?? 5_000);
    this.timer.unref();
    return this;
  }

  /** Stops the timer and saves a last time, clean: nothing can change any more. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.save(true);
  }
}

/** A SessionCache over an InMemorySessionCache that counts its writes (the memory backend's sessions file). */
export class ChangeCountingCache implements SessionCache {
  readonly name: string;
  changes = 0;
  constructor(readonly inner: InMemorySessionCache) {
    this.name = inner.name;
  }
  get(id: string): Promise<Session | null> {
    return this.inner.get(id);
  }
  set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    this.changes++;
    return this.inner.set(id, session, ttlSeconds);
  }
  update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    this.changes++;
    return this.inner.update(id, session, ttlSeconds);
  }
  invalidate(id: string): Promise<void> {
    this.changes++;
    return this.inner.invalidate(id);
  }
  listUserSessions(username: string): Promise<IndexedSession[]> {
    return this.inner.listUserSessions(username);
  }
  invalidateUser(username: string): Promise<number> {
    this.changes++;
    return this.inner.invalidateUser(username);
  }
  clear(): Promise<void> {
    this.changes++;
    return this.inner.clear();
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
