/**
 * Errors of the auth layer a caller branches on (the server maps them to 401 and 429). Messages never
 * hold a username, a token or a password.
 */
export { SessionBackendUnavailableError } from "../errors";

/** Wrong password or unknown user: one error for both, so a response never tells them apart (401). */
export class InvalidCredentialsError extends Error {
  override readonly name = "InvalidCredentialsError";
  readonly code = "invalid_credentials";
  constructor(message = "invalid username or password") {
    super(message);
  }
}

/** Too many failed logins for this username and IP (429, `Retry-After: retryAfterSeconds`). */
export class LoginThrottledError extends Error {
  override readonly name = "LoginThrottledError";
  readonly code = "too_many_attempts";
  constructor(
    readonly retryAfterSeconds: number,
    message = "too many failed login attempts, try again later",
  ) {
    super(message);
  }
}
