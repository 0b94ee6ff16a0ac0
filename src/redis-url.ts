/**
 * Parses `BANGUI_REDIS_URL` into a typed target. Credentials are kept in fields of their own and are
 * never echoed in an error message.
 */

export interface RedisNode {
  host: string;
  port: number;
}

interface RedisAuth {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | ({ kind: "standalone"; url: string; tls: boolean; host: string; port: number; db: number } & RedisAuth)
  | ({ kind: "sentinel"; sentinels: RedisNode[]; masterName: string; db: number } & RedisAuth)
  | ({ kind: "cluster"; nodes: RedisNode[] } & RedisAuth);

const SCHEMES = ["redis:", "rediss:", "redis+sentinel:", "redis+cluster:"];

/** Returns the target, or throws an Error whose message names the part that is wrong (no secrets). */
export function parseRedisUrl(raw: string): RedisTarget {
  const schemeEnd = raw.indexOf("://");
  if (schemeEnd < 0) {
    throw new Error(`must look like redis://host:port (schemes: ${SCHEMES.map((s) => s + "//").join(", ")})`);
  }
  const scheme = raw.slice(0, schemeEnd + 1).toLowerCase();
  if (!SCHEMES.includes(scheme)) {
    throw new Error(`unknown scheme "${scheme.slice(0, 20)}//": use one of ${SCHEMES.map((s) => s + "//").join(", ")}`);
  }
  const rest = raw.slice(schemeEnd + 3);
  const at = rest.lastIndexOf("@", rest.indexOf("/") < 0 ? rest.length : rest.indexOf("/"));
  const auth = at >= 0 ? parseAuth(rest.slice(0, at)) : {};
  const afterAuth = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = afterAuth.indexOf("/");
  const hostPart = slash < 0 ? afterAuth : afterAuth.slice(0, slash);
  const pathParts = slash < 0 ? [] : afterAuth.slice(slash + 1).split("/").filter((p) => p !== "");
  const nodes = hostPart.split(",").map((h) => parseNode(h, scheme === "redis+sentinel:" ? 26379 : 6379));
  if (nodes.length === 0) throw new Error("names no host");

  if (scheme === "redis:" || scheme === "rediss:") {
    if (nodes.length !== 1) throw new Error("redis:// takes one host; use redis+sentinel:// or redis+cluster:// for several");
    if (pathParts.length > 1) throw new Error("path must be at most one database number, like /0");
    const node = nodes[0]!;
    return {
      kind: "standalone",
      url: raw,
      tls: scheme === "rediss:",
      host: node.host,
      port: node.port,
      db: parseDb(pathParts[0]),
      ...auth,
    };
  }
  if (scheme === "redis+sentinel:") {
    const masterName = pathParts[0];
    if (masterName === undefined) throw new Error("redis+sentinel:// needs the master name as its path: /<masterName>[/db]");
    if (pathParts.length > 2) throw new Error("redis+sentinel:// path is /<masterName>[/db]");
    return { kind: "sentinel", sentinels: nodes, masterName: decodeURIComponent(masterName), db: parseDb(pathParts[1]), ...auth };
  }
  if (pathParts.length > 0) throw new Error("redis+cluster:// takes no path (a cluster has only database 0)");
  return { kind: "cluster", nodes, ...auth };
}

function parseAuth(userInfo: string): RedisAuth {
  const colon = userInfo.indexOf(":");
  const username = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(userInfo.slice(colon + 1));
  // redis://:pass@host is the classic password-only form (no ACL user).
  return {
    ...(username !== "" ? { username } : {}),
    ...(password !== undefined && password !== "" ? { password } : {}),
  };
}

function parseNode(text: string, defaultPort: number): RedisNode {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new Error("a host is not host[:port] (percent-encode special characters in user and password)");
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`port ${port} is out of range 1-65535`);
  return { host, port };
}

function parseDb(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,2}$/.test(text)) throw new Error(`database "${text.slice(0, 20)}" is not a number`);
  return Number(text);
}
