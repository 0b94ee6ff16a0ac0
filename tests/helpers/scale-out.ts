/**
 * Small pieces shared by the Sentinel and Cluster tests: a session backend built through the real
 * factory from a `BANGUI_REDIS_URL`, session fixtures, and a failover probe.
 */
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../src/config";
import { createSessionBackend, type SessionBackend } from "../../src/cache";
import { SessionBackendUnavailableError } from "../../src/errors";
import { silentLogger } from "../../src/logger";
import type { Session } from "../../src/cache/types";

/** A unique key prefix per test file / test, so nothing collides on a shared topology. */
export function uniquePrefix(label: string): string {
  return `t${label}${randomBytes(4).toString("hex")}:`;
}

/**
 * Builds a backend the way the service does: `loadConfig` on a BANGUI_* map, then
 * `createSessionBackend`. Near-cache off unless asked: these tests look at Redis itself.
 */
export function backendFor(url: string, env: Record<string, string> = {}): SessionBackend {
  const config = loadConfig({
    BANGUI_REDIS_URL: url,
    BANGUI_NEAR_CACHE: "false",
    BANGUI_KEY_PREFIX: uniquePrefix("x"),
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: "1000",
    ...env,
  });
  return createSessionBackend(config, { logger: silentLogger() });
}

/** A session id like the service makes (sha256 hex of a token). */
export function newId(): string {
  return randomBytes(32).toString("hex");
}

/** A valid session of `username`, living `ttlSeconds`. */
export function newSession(username: string, ttlSeconds = 600): Session {
  const now = Date.now();
  return { username, createdAt: now, lastSeenAt: now, expiresAt: now + ttlSeconds * 1000 };
}

/** Resolves once `fn` resolves, retrying on SessionBackendUnavailableError (e.g. right after start). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof SessionBackendUnavailableError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What a probe saw while the topology was failing over. */
export interface FailoverObservation {
  /** ms from the kill to the first call that resolved. */
  firstSuccessMs: number;
  /** Calls that rejected with SessionBackendUnavailableError before it. */
  unavailable: number;
  /** Calls that rejected with anything else (should stay empty). */
  otherErrors: string[];
}

/**
 * Calls `probe` every `everyMs` from `killedAt` until it resolves (bounded by `timeoutMs`).
 * Every rejection must be a SessionBackendUnavailableError; anything else is recorded.
 */
export async function probeUntilSuccess(
  killedAt: number,
  probe: () => Promise<void>,
  { everyMs = 50, timeoutMs = 20_000 } = {},
): Promise<FailoverObservation> {
  const obs: FailoverObservation = { firstSuccessMs: -1, unavailable: 0, otherErrors: [] };
  while (Date.now() - killedAt < timeoutMs) {
    try {
      await probe();
      obs.firstSuccessMs = Date.now() - killedAt;
      return obs;
    } catch (err) {
      if (err instanceof SessionBackendUnavailableError) obs.unavailable++;
      else obs.otherErrors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`no successful call within ${timeoutMs} ms of the kill (${obs.unavailable} unavailable)`);
}

/** Prints a measured time when BANGUI_TEST_TIMINGS is set (speed is reported, never asserted). */
export function reportTiming(label: string, ms: number): void {
  if (process.env.BANGUI_TEST_TIMINGS) process.stderr.write(`[timing] ${label}: ${ms} ms\n`);
}
