import { parse as parseCookie } from "cookie";
import type { Request } from "express";

/** Name of the session cookie. */
export const SESSION_COOKIE = "bangui_session";

/**
 * The token of a request: `Authorization: Bearer <token>` first, else the `bangui_session` cookie (the
 * first one when several are sent). Undefined when neither is there. Never logged.
 */
export function extractToken(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") {
    const token = auth.slice(7).trim();
    if (token !== "") return token;
  }
  const header = req.headers.cookie;
  if (header === undefined || !header.includes(SESSION_COOKIE)) return undefined;
  try {
    const value = parseCookie(header)[SESSION_COOKIE];
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
