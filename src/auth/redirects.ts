/**
 * Where a login may send the browser back to: one check for the login's `redirect` field, the `rd`
 * parameter of the login page and the original URL a proxy reports to the verify endpoints.
 *
 * Allowed: a same-origin path (`/x...`, never `//` or `/\`, no control characters, no whitespace, and no
 * percent-encoding that decodes into one of those), or an absolute http(s) URL without userinfo whose
 * host is on the allowed list (`app.example.com`, `*.example.com` for any subdomain, `host:port` for
 * one port only). Everything else falls back to `DEFAULT_REDIRECT`.
 */

/** Where a login goes when no safe target was asked for. */
export const DEFAULT_REDIRECT = "/account";

/** Longest target accepted (longer ones fall back). */
export const REDIRECT_MAX_LENGTH = 2048;

/** One allowed host: exact name, or `*.suffix` for any subdomain; optionally one port. */
interface HostRule {
  /** Lower-case host name (punycode), or the suffix after `*.` */
  name: string;
  wildcard: boolean;
  /** Port as the URL parser reports it ("" for the scheme's default), undefined: any port. */
  port: string | undefined;
}

/** The compiled allow-list of a process. */
export interface RedirectPolicy {
  readonly hosts: readonly HostRule[];
}

// In the target as given: control characters, whitespace (incl. the Unicode ones browsers strip or fold),
// and the backslash (browsers read it as a slash).
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0020\u007f-\u00a0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff\\]/;
// In its percent-decoded forms (what a server downstream that decodes would see): control characters and
// the backslash. A decoded space is an ordinary query character (`?q=a%20b`).
// eslint-disable-next-line no-control-regex
const FORBIDDEN_DECODED = /[\u0000-\u001f\u007f\u2028\u2029\\]/;

/**
 * Parses one allow-list entry (`app.example.com`, `*.example.com`, `app.example.com:8443`).
 * @throws Error naming what is wrong (config.ts turns it into a ConfigError)
 */
export function parseHostRule(entry: string): HostRule {
  const raw = entry.trim().toLowerCase();
  const wildcard = raw.startsWith("*.");
  const rest = wildcard ? raw.slice(2) : raw;
  if (rest === "" || rest.includes("*") || /[/?#@\\\s]/.test(rest)) throw new Error(`"${entry}" is not a host name or *.domain`);
  let url: URL;
  try {
    url = new URL(`http://${rest}`);
  } catch {
    throw new Error(`"${entry}" is not a host name or *.domain`);
  }
  const hasPort = /:\d+$/.test(rest);
  return { name: url.hostname, wildcard, port: hasPort ? url.port : undefined };
}

/** Builds the policy from the allowed hosts (config: BANGUI_ALLOWED_REDIRECT_HOSTS). */
export function createRedirectPolicy(allowedHosts: readonly string[]): RedirectPolicy {
  return { hosts: allowedHosts.map(parseHostRule) };
}

function hostAllowed(policy: RedirectPolicy, url: URL): boolean {
  const host = url.hostname;
  for (const rule of policy.hosts) {
    if (rule.port !== undefined && rule.port !== url.port) continue;
    if (rule.wildcard ? host.endsWith(`.${rule.name}`) && host.length > rule.name.length + 1 : host === rule.name) return true;
  }
  return false;
}

/** The forms of `s` after decoding percent-escapes up to three times (stops when nothing changes). */
function decodedForms(s: string): string[] | null {
  const forms = [s];
  let current = s;
  for (let i = 0; i < 3 && current.includes("%"); i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return null; // malformed escapes: refuse rather than guess what a server downstream makes of them
    }
    if (next === current) break;
    forms.push(next);
    current = next;
  }
  return forms;
}

function safePath(target: string): boolean {
  const forms = decodedForms(target);
  if (forms === null) return false;
  if (FORBIDDEN.test(target)) return false;
  for (const form of forms) {
    if (form[0] !== "/" || form[1] === "/" || FORBIDDEN_DECODED.test(form)) return false;
  }
  // The URL parser must agree that this stays on the page's origin.
  const base = "http://same-origin.invalid";
  try {
    return new URL(target, base).origin === base;
  } catch {
    return false;
  }
}

function safeAbsolute(policy: RedirectPolicy, target: string): boolean {
  if (!/^https?:\/\/[^/]/i.test(target)) return false;
  const forms = decodedForms(target);
  if (forms === null || FORBIDDEN.test(target) || forms.some((f) => FORBIDDEN_DECODED.test(f))) return false;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const authority = target.slice(target.indexOf("//") + 2).split(/[/?#]/)[0] ?? "";
  if (url.username !== "" || url.password !== "" || authority.includes("@")) return false;
  return hostAllowed(policy, url);
}

/** True when `target` is a same-origin path or an http(s) URL on an allowed host. */
export function isSafeRedirect(policy: RedirectPolicy, target: unknown): target is string {
  if (typeof target !== "string" || target === "" || target.length > REDIRECT_MAX_LENGTH) return false;
  return target[0] === "/" ? safePath(target) : safeAbsolute(policy, target);
}

/** `target` when it is safe (see the module comment), else `DEFAULT_REDIRECT`. */
export function safeRedirect(policy: RedirectPolicy, target: unknown): string {
  return isSafeRedirect(policy, target) ? target : DEFAULT_REDIRECT;
}
