import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Router } from "express";
import { z } from "zod";
import type { Session } from "../../cache";
import type { SessionService } from "../../auth/session-service";
import { publicHandle } from "../../auth/tokens";
import type { Config } from "../../config";
import { metrics } from "../../metrics";
import { answerFor, HttpError, methodNotAllowed } from "../errors";
import { safeRedirect, type RedirectPolicy } from "../../auth/redirects";
import { clearedCookie, cookiePolicy, sessionCookie } from "../cookies";
import { extractToken } from "../extract-token";
import { checkSession } from "../session-check";

/** Body of POST /api/auth/login. */
export const LoginBodySchema = z.object({
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
  /** Where the browser goes after the login; echoed only when safe (auth/redirects.ts), else "/account". */
  redirect: z.string().max(4096).optional(),
});

/** What `requireSession` leaves on `res.locals`. */
interface AuthLocals {
  sessionId: string;
  session: Session;
}

const JSON_TYPES = ["application/json", "application/*+json"];

function loginOutcome(err: unknown): "invalid" | "throttled" | "bad_request" | "unavailable" | "error" {
  const { status } = answerFor(err);
  if (status === 401) return "invalid";
  if (status === 429) return "throttled";
  if (status === 503) return "unavailable";
  if (status < 500) return "bad_request";
  return "error";
}

/**
 * Every token a request presents: the one `extractToken` picks (the bearer first) and the cookie's,
 * asked of `extractToken` again with the cookie alone, so the cookie rules stay in one place.
 */
function presentedTokens(req: Request): string[] {
  const cookieOnly = { headers: { cookie: req.headers.cookie } } as unknown as Request;
  const tokens = [extractToken(req), extractToken(cookieOnly)].filter((t): t is string => t !== undefined);
  return [...new Set(tokens)];
}

/** The /api/auth routes (thin: parse, call the SessionService, send). */
export function authRouter(sessions: SessionService, config: Config, redirects: RedirectPolicy): Router {
  const router = express.Router({ strict: false, caseSensitive: true });
  const cookies = cookiePolicy(config);
  const jsonBody = express.json({ limit: config.bodyLimitBytes, strict: true, type: JSON_TYPES });

  router.use((_req, res, next) => {
    res.setHeader("Cache-Control", "no-store");
    next();
  });

  /** 401 unless the request carries a valid session; counts session checks by outcome. */
  const requireSession: RequestHandler = async (req, res, next) => {
    const found = await checkSession(sessions, req);
    if (found === null) throw new HttpError(401, "unauthenticated", "no valid session");
    const locals = res.locals as AuthLocals;
    locals.sessionId = found.id;
    locals.session = found.session;
    next();
  };

  const requireJson: RequestHandler = (req, _res, next) => {
    if (req.is(JSON_TYPES) === false || req.is(JSON_TYPES) === null) {
      throw new HttpError(415, "unsupported_media_type", "send the body as application/json");
    }
    next();
  };

  const countLoginFailure: ErrorRequestHandler = (err, _req, _res, next) => {
    metrics.logins.inc({ outcome: loginOutcome(err) });
    next(err);
  };

  router
    .route("/login")
    .post(requireJson, jsonBody, async (req: Request, res) => {
      const body = LoginBodySchema.safeParse(req.body);
      if (!body.success) throw new HttpError(400, "invalid_request", "expected {username, password, redirect?} as strings");
      const userAgent = req.get("user-agent");
      const { token, session } = await sessions.login(body.data.username, body.data.password, {
        ip: req.ip ?? req.socket.remoteAddress ?? "unknown",
        ...(userAgent !== undefined ? { userAgent } : {}),
      });
      metrics.logins.inc({ outcome: "success" });
      res.append("Set-Cookie", sessionCookie(cookies, token, sessions.sessionTtlSeconds));
      res.status(200).json({
        username: session.username,
        expiresAt: new Date(session.expiresAt).toISOString(),
        redirect: safeRedirect(redirects, body.data.redirect),
      });
    })
    .all(methodNotAllowed(["POST"]));
  router.use("/login", countLoginFailure);

  router
    .route("/session")
    .get(requireSession, (_req, res) => {
      const { session } = res.locals as AuthLocals;
      // The hottest answer of the service, written directly: res.json/res.send (content-type and charset
      // handling, freshness check) cost about a fifth of a session check's throughput (bench/profile.js).
      // Node drops the body of a HEAD by itself.
      const body = JSON.stringify({
        username: session.username,
        createdAt: new Date(session.createdAt).toISOString(),
        expiresAt: new Date(session.expiresAt).toISOString(),
      });
      res.statusCode = 200;
      res.setHeader("Content-Type", "application/json; charset=utf-8");
      res.setHeader("Content-Length", Buffer.byteLength(body));
      res.end(body);
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/logout")
    .post(async (req, res) => {
      // Every session the request presents ends, not only the one a session check would use.
      for (const token of presentedTokens(req)) await sessions.logout(token);
      res.append("Set-Cookie", clearedCookie(cookies));
      res.status(204).end();
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/logout-all")
    .post(requireSession, async (_req, res) => {
      const { session } = res.locals as AuthLocals;
      await sessions.logoutAll(session.username);
      res.append("Set-Cookie", clearedCookie(cookies));
      res.status(204).end();
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/sessions")
    .get(requireSession, async (_req, res) => {
      const { session, sessionId } = res.locals as AuthLocals;
      res.status(200).json({ sessions: await sessions.listSessions(session.username, sessionId) });
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/sessions/:id")
    .delete(requireSession, async (req, res) => {
      const { session, sessionId } = res.locals as AuthLocals;
      const handle = String(req.params.id);
      const revoked = await sessions.revokeSession(session.username, handle);
      if (!revoked) throw new HttpError(404, "not_found", "no such session");
      if (handle === publicHandle(sessionId)) res.append("Set-Cookie", clearedCookie(cookies));
      res.status(204).end();
    })
    .all(methodNotAllowed(["DELETE"]));

  return router;
}
