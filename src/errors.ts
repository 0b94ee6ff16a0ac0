/**
 * Errors a caller branches on. Each has a stable `name` and `code`, and keeps the original error
 * as `cause`. Messages never contain a token, a password or Redis credentials.
 */

/** The session backend (Redis) could not answer: the server maps this to 503, fail closed. */
export class SessionBackendUnavailableError extends Error {
  override readonly name = "SessionBackendUnavailableError";
  readonly code = "session_backend_unavailable";
  constructor(message = "the session backend is unavailable", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A configuration value is invalid: `main.ts` prints the message and exits 1. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "config_invalid";
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
