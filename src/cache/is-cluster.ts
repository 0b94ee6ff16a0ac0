import type { Cluster, Redis } from "ioredis";

/**
 * True for an ioredis `Cluster` client. Reads ioredis's own `isCluster` flag instead of `instanceof`:
 * a client built by the user's copy of ioredis (another version, another `node_modules`) is not an
 * instance of this package's `Cluster` class, and must still be scanned master by master.
 */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}
