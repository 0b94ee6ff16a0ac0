import type { Cluster, Redis } from "ioredis";
import { isCluster } from "../cache/is-cluster";
import { keySlot } from "../cache/redis";

const SCAN_COUNT = 1000;

/** Every master: the client itself, or each master node of a Cluster. */
export function masters(client: Redis | Cluster): Redis[] {
  return isCluster(client) ? client.nodes("master") : [client];
}

/** Calls `batch` with each SCAN page of keys matching `pattern`, on every master. */
export async function scanKeys(
  client: Redis | Cluster,
  pattern: string,
  batch: (node: Redis, keys: string[]) => Promise<void>,
): Promise<void> {
  for (const node of masters(client)) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) await batch(node, keys);
    } while (cursor !== "0");
  }
}

/** UNLINKs keys found on one node, one command per hash slot (never CROSSSLOT on a Cluster). */
export async function unlinkOnNode(node: Redis, keys: string[], cluster: boolean): Promise<number> {
  if (keys.length === 0) return 0;
  if (!cluster) return node.unlink(...keys);
  const bySlot = new Map<number, string[]>();
  for (const k of keys) {
    const s = keySlot(k);
    const list = bySlot.get(s);
    if (list) list.push(k);
    else bySlot.set(s, [k]);
  }
  const counts = await Promise.all([...bySlot.values()].map((group) => node.unlink(...group)));
  return counts.reduce((a, b) => a + b, 0);
}
