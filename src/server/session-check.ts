import type { IncomingMessage } from "node:http";
import type { Session } from "../cache";
import type { SessionService } from "../auth/session-service";
import { metrics } from "../metrics";
import { extractToken } from "./extract-token";

// Children bound to their label once: an inc() then skips hashing the labels object on every request.
const checks = {
  valid: metrics.sessionChecks.labels({ outcome: "valid" }),
  invalid: metrics.sessionChecks.labels({ outcome: "invalid" }),
  unavailable: metrics.sessionChecks.labels({ outcome: "unavailable" }),
};

/** A valid session found on a request. */
export interface FoundSession {
  id: string;
  session: Session;
}

/**
 * The session check every route and the verify endpoints share: the request's token (bearer or cookie),
 * validated by the SessionService, counted in `bangui_session_checks_total` by outcome.
 * @returns null when the request has no valid session
 * @throws SessionBackendUnavailableError (counted as "unavailable"): never "no session" on an outage
 */
export async function checkSession(sessions: SessionService, req: IncomingMessage): Promise<FoundSession | null> {
  const token = extractToken(req);
  let found: FoundSession | null;
  try {
    found = token === undefined ? null : await sessions.validate(token);
  } catch (err) {
    checks.unavailable.inc();
    throw err;
  }
  (found === null ? checks.invalid : checks.valid).inc();
  return found;
}
