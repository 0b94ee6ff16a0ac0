/** The stored form of an express-session session: what is validated on read. */

/** A session as express-session (or @fastify/session) hands it to a store: a JSON object with a cookie. */
export interface StoreSessionData {
  cookie: {
    expires?: Date | string | null;
    maxAge?: number | null;
    originalMaxAge?: number | null;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/**
 * What `set` and `touch` accept: any session object (express-session's, @fastify/session's) whose
 * optional `cookie.expires` gives its end of life. It is stored as JSON.
 */
export interface SessionInput {
  cookie?: { expires?: Date | string | null | undefined } | undefined;
}

/** A validated value as the near-cache keeps it: the JSON text (parsed afresh for each caller) and its expiry. */
export interface Stored {
  readonly json: string;
  /** From `cookie.expires`, epoch ms; undefined for a browser-session cookie. */
  readonly expiresAt: number | undefined;
}

/** The validated value, or the reason it is unusable (a JSON object with a `cookie` object, nothing less). */
export function validateStored(raw: string): Stored | string {
  if (raw === "") return "wrong key type";
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return "not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const cookie = (value as { cookie?: unknown }).cookie;
  if (typeof cookie !== "object" || cookie === null || Array.isArray(cookie)) return "no cookie";
  const expires = (cookie as { expires?: unknown }).expires;
  let expiresAt: number | undefined;
  if (expires !== undefined && expires !== null) {
    expiresAt = typeof expires === "string" ? Date.parse(expires) : NaN;
    if (!Number.isFinite(expiresAt)) return "bad cookie.expires";
  }
  return { json: raw, expiresAt };
}
