import type { IncomingMessage } from "node:http";
import type { Session } from "../cache";
import type { SessionService } from "../auth/session-service";
import { metrics } from "../metrics";
import { extractToken } from "./extract-token";

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
    metrics.sessionChecks.inc({ outcome: "unavailable" });
    throw err;
  }
  metrics.sessionChecks.inc({ outcome: found === null ? "invalid" : "valid" });
  return found;
}
