/**
 * The session cookie: its name, and the Set-Cookie values that set and clear it.
 *
 * With `Secure` and no `Domain`, the cookie is named `__Host-bangui_session` (OWASP): browsers then accept
 * it only with `Secure`, `Path=/` and no `Domain`, so neither a sibling subdomain nor a plain-http page
 * can plant or overwrite it. Without `Secure`, or with `BANGUI_COOKIE_DOMAIN` (the `__Host-` prefix
 * forbids a Domain), it is `bangui_session`. Requests are read with both names (extract-token.ts).
 */
import { serialize } from "cookie";
import type { Config } from "../config";

/** Name of the session cookie without the `__Host-` prefix. */
export const SESSION_COOKIE = "bangui_session";

/** Name of the session cookie when it is Secure and host-only. */
export const HOST_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;

/** How this process writes the session cookie. */
export interface CookiePolicy {
  readonly name: string;
  readonly secure: boolean;
  readonly domain: string | undefined;
}

/** The cookie policy of a configuration. */
export function cookiePolicy(config: Pick<Config, "cookieSecure" | "cookieDomain">): CookiePolicy {
  const domain = config.cookieDomain;
  const name = config.cookieSecure && domain === undefined ? HOST_SESSION_COOKIE : SESSION_COOKIE;
  return { name, secure: config.cookieSecure, domain };
}

/** `Set-Cookie` value carrying a new session token. */
export function sessionCookie(policy: CookiePolicy, token: string, maxAgeSeconds: number): string {
  return serialize(policy.name, token, {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    maxAge: maxAgeSeconds,
    secure: policy.secure,
    ...(policy.domain !== undefined ? { domain: policy.domain } : {}),
  });
}

/** `Set-Cookie` value that removes the session cookie. */
export function clearedCookie(policy: CookiePolicy): string {
  return serialize(policy.name, "", {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    maxAge: 0,
    expires: new Date(0),
    secure: policy.secure,
    ...(policy.domain !== undefined ? { domain: policy.domain } : {}),
  });
}
