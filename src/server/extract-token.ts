import { parse as parseCookie } from "cookie";
import type { IncomingMessage } from "node:http";
import { HOST_SESSION_COOKIE, SESSION_COOKIE } from "./cookies";

export { SESSION_COOKIE } from "./cookies";

/**
 * The token of a request: `Authorization: Bearer <token>` first, else the `__Host-bangui_session` cookie,
 * else the `bangui_session` cookie (the first of a name when several are sent; both names are read, so
 * switching `BANGUI_COOKIE_SECURE` keeps the sessions of the other name). Undefined when none is there.
 * Never logged.
 */
export function extractToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") {
    const token = auth.slice(7).trim();
    if (token !== "") return token;
  }
  const header = req.headers.cookie;
  // "__Host-bangui_session" contains "bangui_session": one test covers both names.
  if (header === undefined || !header.includes(SESSION_COOKIE)) return undefined;
  try {
    const cookies = parseCookie(header);
    const value = cookies[HOST_SESSION_COOKIE] || cookies[SESSION_COOKIE];
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
