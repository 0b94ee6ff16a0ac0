/**
 * The oldest Redis this project runs on: 7.0 (`PEXPIRE ... NX|GT` keeps the user index alive as long as
 * its longest session; `GETDEL`). Checked once at start, on every master, so an older server stops the
 * start with a message naming its version instead of failing every login later.
 */
import type { Cluster, Redis } from "ioredis";
import { isCluster } from "./is-cluster";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { createRedisClient } from "./factory";

/** Oldest supported Redis major version. */
export const MIN_REDIS_MAJOR = 7;

/** A reachable Redis is older than 7.0: the service refuses to start (main.ts prints the message, exits 1). */
export class RedisVersionError extends Error {
  override readonly name = "RedisVersionError";
  readonly code = "redis_version_unsupported";
}

/** `redis_version` of an `INFO server` answer, or undefined when there is none. */
export function parseRedisVersion(info: string): string | undefined {
  return /^redis_version:([^\r\n]+)/m.exec(info)?.[1]?.trim();
}

/** Throws RedisVersionError unless `version` (e.g. "7.0.15") is 7.0 or later. @param where "host:port" */
export function assertSupportedRedisVersion(version: string | undefined, where: string): void {
  const major = Number(/^(\d+)\./.exec(version ?? "")?.[1]);
  if (Number.isInteger(major) && major >= MIN_REDIS_MAJOR) return;
  const named = version === undefined || version === "" ? "(version unknown)" : version;
  throw new RedisVersionError(
    `Redis ${named} at ${where} is too old: bangui-session-cache needs Redis ${MIN_REDIS_MAJOR}.0 or later ` +
      "(PEXPIRE NX/GT, GETDEL); upgrade it or point BANGUI_REDIS_URL at a newer server",
  );
}

/** Asks every master of a ready client for its version (INFO server). @throws RedisVersionError */
export async function assertRedisVersion(client: Redis | Cluster): Promise<void> {
  const nodes = isCluster(client) ? client.nodes("master") : [client];
  for (const node of nodes) {
    const info = await node.info("server");
    assertSupportedRedisVersion(parseRedisVersion(info), `${node.options.host ?? "?"}:${node.options.port ?? "?"}`);
  }
}

/**
 * The start-up check of the service: connects once, checks the version of every master, disconnects.
 * A Redis that cannot be reached within the connect + command timeouts is an outage, not a refusal:
 * logged, and the service starts (answering 503 until Redis is back).
 * @throws RedisVersionError when a reachable server is older than 7.0
 */
export async function checkRedisServerVersion(config: Config, logger: Logger): Promise<void> {
  if (config.redis === undefined) return;
  const client = createRedisClient(config.redis, config, { lazyConnect: true, logger });
  const boundMs = config.redisConnectTimeoutMs + config.redisCommandTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await assertRedisVersion(client);
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${boundMs} ms`)), boundMs);
      }),
    ]);
  } catch (err) {
    if (err instanceof RedisVersionError) throw err;
    logger.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, "could not check the Redis version at start");
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
