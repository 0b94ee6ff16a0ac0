/**
 * `BANGUI_TRUST_PROXY`, parsed into what Express's `trust proxy` setting takes, and validated the way
 * Express itself compiles it (proxy-addr, Express's own dependency), so a value Express would throw on
 * stops the start instead of crashing every worker when the app is built.
 */
import { compile } from "proxy-addr";

/** What `app.set("trust proxy", value)` receives: all / nothing, a hop count, or addresses and subnets. */
export type TrustProxy = boolean | number | readonly string[];

/** Hop counts beyond this are a typo (a chain of a thousand proxies is not a deployment). */
const MAX_HOPS = 1000;

/**
 * `true` / `false`; a hop count (`1`: trust the nearest proxy only); or a comma list of `loopback`,
 * `linklocal`, `uniquelocal`, IP addresses and subnets (`10.0.0.0/8`, `10.0.0.1/255.255.255.0`, `::1`).
 * @throws Error whose message says what is wrong, never more than the value itself
 */
export function parseTrustProxy(raw: string): TrustProxy {
  const value = raw.trim();
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > MAX_HOPS) throw new Error(`a hop count must be at most ${MAX_HOPS}`);
    return hops;
  }
  const entries = value.split(",").map((entry) => entry.trim());
  if (entries.some((entry) => entry === "")) {
    throw new Error("must be true, false, a hop count, or a comma list of loopback, linklocal, uniquelocal, addresses and subnets (found an empty entry)");
  }
  try {
    compile(entries);
  } catch (err) {
    // proxy-addr says "invalid IP address: x" / "invalid range on address: x/99": the entry at fault.
    throw new Error(
      `${(err as Error).message}; expected true, false, a hop count, or a comma list of loopback, linklocal, ` +
        "uniquelocal, IP addresses and subnets (10.0.0.0/8)",
    );
  }
  return Object.freeze(entries);
}
