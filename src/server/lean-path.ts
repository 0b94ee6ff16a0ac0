/**
 * The lean path: requests answered before Express sees them (the verify endpoints and the session check). Express's per-request work (prototype
 * switch, router matching, query parsing), helmet's page headers, the access logger and body parsing are
 * what a proxy's verify subrequest does not need, and that subrequest comes with every request of every
 * protected app. Everything else goes on to Express untouched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { answerSession, type SessionAnswerDeps } from "./session-answer";
import { answerVerify, type VerifyDeps, type VerifyMode } from "./verify";

type LeanRoute = VerifyMode | "session";

const ROUTES: ReadonlyMap<string, LeanRoute> = new Map<string, LeanRoute>([
  ["/api/auth/session", "session"],
  ["/api/auth/session/", "session"],
  ["/api/auth/verify", "verify"],
  ["/api/auth/verify/", "verify"],
  ["/api/auth/forward-auth", "forward-auth"],
  ["/api/auth/forward-auth/", "forward-auth"],
]);

/** A request handler that answers some requests itself and returns true, or returns false. */
export type LeanHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The lean path of the service: the verify endpoints (any method), and GET/HEAD /api/auth/session (its
 * other methods go on to Express, which answers 405). `createApp` puts it in front of Express.
 */
export function createLeanPath(deps: VerifyDeps & SessionAnswerDeps): LeanHandler {
  const debug = deps.logger.isLevelEnabled("debug");
  const log = deps.logger.child({ component: "http" });
  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const mode = ROUTES.get(q === -1 ? url : url.slice(0, q));
    if (mode === undefined) return false;
    if (mode === "session" && req.method !== "GET" && req.method !== "HEAD") return false;
    // Access-logged at debug only, like the other hot paths (app.ts QUIET_PATHS).
    if (debug) res.once("finish", () => log.debug({ req: { method: req.method, path: url.slice(0, q === -1 ? url.length : q) }, res: { statusCode: res.statusCode } }, "request completed"));
    void (mode === "session" ? answerSession(deps, req, res) : answerVerify(deps, mode, req, res));
    return true;
  };
}
