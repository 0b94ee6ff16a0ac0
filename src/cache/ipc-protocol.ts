/**
 * The messages of the ipc session backend, between the node:cluster primary (which holds the sessions,
 * `ipc-server.ts`) and each worker (`IpcSessionCache`, `ipc.ts`), over the cluster IPC channel.
 *
 * worker -> primary
 *   {type: "bangui:cache-hello"}                       first message of a worker's cache: from now on the
 *                                                        primary sends it invalidations and waits for its acks
 *   {type: "bangui:cache-request", id, op, args}       one SessionCache call; `id` is unique per worker
 *   {type: "bangui:cache-ack", seq}                    the worker has dropped what invalidation `seq` named
 * primary -> worker
 *   {type: "bangui:cache-response", id, value, ttlMs?} the answer to request `id` (`ttlMs`: remaining life
 *                                                        of the session a `get` returned, for the near-cache)
 *   {type: "bangui:cache-response", id, error}         the primary could not run it (a message, no data)
 *   {type: "bangui:cache-invalidate", seq, ids | all}  drop these sessions (or everything) from the
 *                                                        near-cache, then ack `seq`
 *
 * Ordering: one IPC channel per worker delivers in order, and the primary runs requests one at a time.
 * A write is answered only after every other worker that said hello has acked its invalidation (or has
 * died), so once a logout is answered no worker holds the session in its near-cache.
 */
import type { IndexedSession, Session } from "./types";

export const CACHE_HELLO = "bangui:cache-hello";
export const CACHE_REQUEST = "bangui:cache-request";
export const CACHE_ACK = "bangui:cache-ack";
export const CACHE_RESPONSE = "bangui:cache-response";
export const CACHE_INVALIDATE = "bangui:cache-invalidate";

/** The SessionCache calls a worker can ask for, and their arguments. */
export interface CacheOps {
  get: [id: string];
  set: [id: string, session: Session, ttlSeconds: number];
  update: [id: string, session: Session, ttlSeconds: number];
  invalidate: [id: string];
  listUserSessions: [username: string];
  invalidateUser: [username: string];
  clear: [];
  ping: [];
}

/** What each call answers. */
export interface CacheResults {
  get: Session | null;
  set: null;
  update: boolean;
  invalidate: null;
  listUserSessions: IndexedSession[];
  invalidateUser: number;
  clear: null;
  ping: null;
}

export type CacheOp = keyof CacheOps;
export const CACHE_OPS: readonly CacheOp[] = [
  "get",
  "set",
  "update",
  "invalidate",
  "listUserSessions",
  "invalidateUser",
  "clear",
  "ping",
];

export interface CacheRequest<O extends CacheOp = CacheOp> {
  type: typeof CACHE_REQUEST;
  id: number;
  op: O;
  args: CacheOps[O];
}

export interface CacheResponse {
  type: typeof CACHE_RESPONSE;
  id: number;
  value?: unknown;
  ttlMs?: number;
  error?: string;
}

export interface CacheInvalidate {
  type: typeof CACHE_INVALIDATE;
  seq: number;
  ids?: string[];
  all?: true;
}

export interface CacheAck {
  type: typeof CACHE_ACK;
  seq: number;
}

function typed(value: unknown): value is { type: unknown } & Record<string, unknown> {
  return typeof value === "object" && value !== null && "type" in value;
}

export function isCacheHello(value: unknown): boolean {
  return typed(value) && value.type === CACHE_HELLO;
}

export function isCacheRequest(value: unknown): value is CacheRequest {
  return (
    typed(value) &&
    value.type === CACHE_REQUEST &&
    typeof value.id === "number" &&
    typeof value.op === "string" &&
    (CACHE_OPS as readonly string[]).includes(value.op) &&
    Array.isArray(value.args)
  );
}

export function isCacheAck(value: unknown): value is CacheAck {
  return typed(value) && value.type === CACHE_ACK && typeof value.seq === "number";
}

export function isCacheResponse(value: unknown): value is CacheResponse {
  return typed(value) && value.type === CACHE_RESPONSE && typeof value.id === "number";
}

export function isCacheInvalidate(value: unknown): value is CacheInvalidate {
  return typed(value) && value.type === CACHE_INVALIDATE && typeof value.seq === "number";
}
