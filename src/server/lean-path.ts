/**
 * The lean path: requests answered before Express sees them. Express's per-request work (prototype
 * switch, router matching, query parsing), helmet's page headers, the access logger and body parsing are
 * what a proxy's verify subrequest does not need, and that subrequest comes with every request of every
 * protected app. Everything else goes on to Express untouched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { answerVerify, type VerifyDeps, type VerifyMode } from "./verify";

const ROUTES: ReadonlyMap<string, VerifyMode> = new Map<string, VerifyMode>([
  ["/api/auth/verify", "verify"],
  ["/api/auth/verify/", "verify"],
  ["/api/auth/forward-auth", "forward-auth"],
  ["/api/auth/forward-auth/", "forward-auth"],
]);

/** A request handler that answers some requests itself and returns true, or returns false. */
export type LeanHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The lean path of the service (the verify endpoints); `createApp` puts it in front of Express. */
export function createLeanPath(deps: VerifyDeps): LeanHandler {
  const debug = deps.logger.isLevelEnabled("debug");
  const log = deps.logger.child({ component: "http" });
  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const mode = ROUTES.get(q === -1 ? url : url.slice(0, q));
    if (mode === undefined) return false;
    // Access-logged at debug only, like the other hot paths (app.ts QUIET_PATHS).
    if (debug) res.once("finish", () => log.debug({ req: { method: req.method, path: url.slice(0, q === -1 ? url.length : q) }, res: { statusCode: res.statusCode } }, "request completed"));
    void answerVerify(deps, mode, req, res);
    return true;
  };
}
