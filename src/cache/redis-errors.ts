/**
 * Which failures of a Redis operation mean "the backend cannot answer now" (SessionBackendUnavailableError:
 * 503, fail closed) and which are bugs (the error goes on unchanged: a 500, logged). Decided by what
 * ioredis and Node attach to the error, never by searching its text:
 * - the error's class (`err.name`): ioredis's MaxRetriesPerRequestError, ClusterAllFailedError, and the
 *   redis-errors classes it raises when a connection breaks (AbortError, InterruptError, ParserError...);
 * - a Node system error code (`err.code`: ECONNREFUSED, ECONNRESET, ETIMEDOUT, TLS failures...);
 * - for a ReplyError, the error code Redis put first in its reply (`-READONLY ...`, `-LOADING ...`): the
 *   protocol's own error code. `-ERR`, `-WRONGTYPE`, `-NOSCRIPT` and other codes not listed are a command
 *   this code should not have sent: a bug, not an outage;
 * - ioredis raises a few connection states as plain Errors with neither name nor code ("Connection is
 *   closed.", "Command timed out"...): those are recognised by their exact, fixed text.
 * Anything else (TypeError, RangeError, a zod error, an unknown Error) is a bug.
 */
import { SessionBackendUnavailableError } from "../errors";

/** Error classes of ioredis / redis-errors that mean the connection or the cluster could not serve. */
const UNAVAILABLE_NAMES: ReadonlySet<string> = new Set([
  "MaxRetriesPerRequestError",
  "ClusterAllFailedError",
  "AbortError",
  "InterruptError",
  "ParserError",
  // The base class, raised as such by ioredis's Cluster ("Connection is aborted" / "discarded").
  "RedisError",
]);

/** Node system error codes of a connection that failed, broke or timed out. */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENETRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  "ERR_SOCKET_CLOSED",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  // TLS: a certificate the client refuses, a handshake that fails.
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const UNAVAILABLE_CODE_PREFIXES = ["ERR_SSL_", "ERR_TLS_"] as const;

/** Redis error-reply codes of a server that cannot serve this client now (or not with these credentials). */
const UNAVAILABLE_REPLIES: ReadonlySet<string> = new Set([
  "LOADING", // loading its dataset after a restart
  "READONLY", // a replica (demoted master, failover in progress)
  "MASTERDOWN", // replica lost its master (replica-serve-stale-data no)
  "CLUSTERDOWN",
  "TRYAGAIN", // cluster resharding
  "MOVED", // a redirection ioredis did not follow (cluster in flux)
  "ASK",
  "NOREPLICAS", // min-replicas-to-write not met
  "BUSY", // a script or function is running
  "OOM", // maxmemory reached
  "MISCONF", // cannot persist, refuses writes
  "UNBLOCKED", // instance state changed (master turned replica)
  "NOAUTH", // credentials: the backend is unusable until the deployment is fixed
  "WRONGPASS",
  "NOPERM",
]);

/** Plain Errors ioredis raises for connection states (no name, no code): their fixed texts. */
const IOREDIS_CONNECTION_TEXTS: ReadonlySet<string> = new Set([
  "Connection is closed.",
  "Command timed out",
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
  "None of startup nodes is available",
  "Cluster is disconnected.",
  "Cluster is disconnecting.",
  "Node is disconnected",
  "No master node is available for the pipeline",
]);
/** The same, for the texts ioredis completes with details (a delay, the last error). */
const IOREDIS_CONNECTION_TEXT_PREFIXES = [
  "All sentinels are unreachable",
  "Too many Cluster redirections.",
  "Socket timeout. Expecting data",
] as const;

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  previousErrors?: unknown;
}

/** The error code of a Redis error reply: the first word Redis sent (`READONLY`, `ERR`, `WRONGTYPE`...). */
export function replyCode(err: unknown): string | undefined {
  const e = fields(err);
  if (e.name !== "ReplyError" || typeof e.message !== "string") return undefined;
  const space = e.message.indexOf(" ");
  return space === -1 ? e.message : e.message.slice(0, space);
}

/** True when `err` says the backend could not answer (as opposed to a bug in what was asked of it). */
export function isBackendUnavailable(err: unknown): boolean {
  if (err instanceof SessionBackendUnavailableError) return true;
  const e = fields(err);
  if (typeof e.name === "string" && UNAVAILABLE_NAMES.has(e.name)) return true;
  if (typeof e.code === "string") {
    if (UNAVAILABLE_CODES.has(e.code)) return true;
    if (UNAVAILABLE_CODE_PREFIXES.some((p) => (e.code as string).startsWith(p))) return true;
  }
  const reply = replyCode(err);
  if (reply !== undefined) {
    if (UNAVAILABLE_REPLIES.has(reply)) return true;
    // A MULTI/EXEC refused because a queued command was refused: decided by those refusals.
    if (reply === "EXECABORT" && Array.isArray(e.previousErrors)) return e.previousErrors.some(isBackendUnavailable);
    return false;
  }
  if (e.name === "Error" && typeof e.message === "string") {
    const text = e.message;
    if (IOREDIS_CONNECTION_TEXTS.has(text)) return true;
    if (IOREDIS_CONNECTION_TEXT_PREFIXES.some((p) => text.startsWith(p))) return true;
  }
  return false;
}

/**
 * What a failed operation throws: SessionBackendUnavailableError (naming the operation and the kind of
 * failure, never a key or a value) when the backend could not answer, else `err` itself, unchanged, so
 * the server answers 500 and logs it.
 */
export function toBackendError(op: string, err: unknown): unknown {
  if (err instanceof SessionBackendUnavailableError) return err;
  if (!isBackendUnavailable(err)) return err;
  return new SessionBackendUnavailableError(`the session backend is unavailable (${op}: ${kindOf(err)})`, { cause: err });
}

/** A short, fixed description: the class, the system code or the reply code, never the message text. */
function kindOf(err: unknown): string {
  const e = fields(err);
  const reply = replyCode(err);
  if (reply !== undefined) return reply;
  if (typeof e.code === "string") return e.code;
  if (typeof e.name === "string" && e.name !== "Error") return e.name;
  if (e.message === "Command timed out") return "command timed out";
  return "not connected";
}

function fields(err: unknown): ErrorFields {
  return typeof err === "object" && err !== null ? (err as ErrorFields) : {};
}
