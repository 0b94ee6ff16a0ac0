/**
 * The verify endpoints a reverse proxy asks on every request of every app it protects:
 *   GET /api/auth/verify        nginx `auth_request`: 200 + `Remote-User`, else 401 (never a 3xx: nginx
 *                               turns those into 500) with `Location: <login>?rd=<original URL>`;
 *   GET /api/auth/forward-auth  Traefik `forwardAuth`, Caddy `forward_auth`: the same, except that a browser
 *                               navigation without a session gets the 302 to the login page itself.
 * Both answer 503 when the backend cannot be asked (fail closed). Any method is answered alike: an nginx
 * subrequest keeps the method of the request it guards, and no body is read.
 *
 * They run on the lean path (lean-path.ts): no Express, no helmet, no body parsing; the answer goes to the
 * proxy, not to a browser. They share the session check (session-check.ts), the error mapping
 * (errors.ts `answerFor`) and the metrics with the routes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SessionService } from "../auth/session-service";
import { isSafeRedirect, type RedirectPolicy } from "../auth/redirects";
import type { Logger } from "../logger";
import { answerFor } from "./errors";
import { checkSession } from "./session-check";

/** Which of the two endpoints. */
export type VerifyMode = "verify" | "forward-auth";

/** What the verify handler needs. */
export interface VerifyDeps {
  sessions: SessionService;
  redirects: RedirectPolicy;
  /** `BANGUI_PUBLIC_URL`: login links are absolute on it; unset: relative (`/login`, on the app's own host). */
  publicUrl: string | undefined;
  logger: Logger;
}

const UNAUTHENTICATED = JSON.stringify({ error: "unauthenticated", message: "no valid session" });

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const comma = value.indexOf(",");
  const first = (comma === -1 ? value : value.slice(0, comma)).trim();
  return first === "" ? undefined : first;
}

/**
 * The URL the browser asked the proxy for: `X-Original-URL` (nginx), else `X-Forwarded-Proto` +
 * `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy). Undefined when the proxy did not say.
 */
export function originalUrl(req: IncomingMessage): string | undefined {
  const direct = req.headers["x-original-url"];
  if (typeof direct === "string" && direct !== "") return direct;
  const proto = firstValue(req.headers["x-forwarded-proto"]);
  const host = firstValue(req.headers["x-forwarded-host"]);
  const uri = req.headers["x-forwarded-uri"];
  if (proto === undefined || host === undefined || typeof uri !== "string" || uri[0] !== "/") return undefined;
  return `${proto}://${host}${uri}`;
}

/**
 * Where the login should send the browser back to, or undefined. With `publicUrl` the login page is on
 * another origin, so `rd` is the whole original URL, kept only when its host is allowed. Without it, the
 * login link is relative and resolves on the original URL's own origin: `rd` is its path and query.
 */
export function returnTarget(deps: Pick<VerifyDeps, "redirects" | "publicUrl">, original: string | undefined): string | undefined {
  if (original === undefined) return undefined;
  if (deps.publicUrl !== undefined) return isSafeRedirect(deps.redirects, original) ? original : undefined;
  let path: string;
  try {
    const url = new URL(original);
    path = `${url.pathname}${url.search}`;
  } catch {
    path = original;
  }
  return isSafeRedirect(deps.redirects, path) && path[0] === "/" ? path : undefined;
}

/** The login page's URL, carrying `rd` when there is one. */
export function loginUrl(publicUrl: string | undefined, rd: string | undefined): string {
  const base = `${publicUrl ?? ""}/login`;
  return rd === undefined ? base : `${base}?rd=${encodeURIComponent(rd)}`;
}

/** A top-level browser navigation (not a script's fetch/XHR, not an API client). */
function isBrowserNavigation(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (accept === undefined || !accept.includes("text/html")) return false;
  if (req.headers["x-requested-with"] !== undefined) return false;
  const mode = req.headers["sec-fetch-mode"];
  return mode === undefined || mode === "navigate";
}

const NO_BODY = { "Cache-Control": "no-store", "Content-Length": "0" };

/** 200 with the identity header: the hot answer, written in one writeHead. */
function sendUser(res: ServerResponse, username: string): void {
  res.writeHead(200, { ...NO_BODY, "Remote-User": username });
  res.end();
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, {
    "Cache-Control": "no-store",
    ...headers,
    ...(body !== "" ? { "Content-Type": "application/json; charset=utf-8" } : {}),
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** Answers one verify or forward-auth request. Never rejects: every failure is answered. */
export async function answerVerify(deps: VerifyDeps, mode: VerifyMode, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const found = await checkSession(deps.sessions, req);
    if (found !== null) {
      sendUser(res, found.session.username);
      return;
    }
    const location = loginUrl(deps.publicUrl, returnTarget(deps, originalUrl(req)));
    if (mode === "forward-auth" && isBrowserNavigation(req)) {
      send(res, 302, { Location: location }, "");
      return;
    }
    send(res, 401, { Location: location }, UNAUTHENTICATED);
  } catch (err) {
    const answer = answerFor(err);
    const path = req.url?.split("?")[0];
    if (answer.status === 503) {
      deps.logger.warn({ err: { name: (err as Error).name, message: (err as Error).message }, path }, "session backend unavailable");
    } else {
      deps.logger.error({ err, method: req.method, path }, "unexpected error");
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, answer.status, answer.headers ?? {}, JSON.stringify({ error: answer.code, message: answer.message }));
  }
}
