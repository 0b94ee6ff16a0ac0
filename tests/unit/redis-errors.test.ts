import { ReplyError } from "ioredis";
import { isBackendUnavailable, replyCode, toBackendError } from "../../src/cache/redis-errors";
import { SessionBackendUnavailableError } from "../../src/errors";

/** The classification table: by class name, system error code and Redis reply code, never by free text. */
const systemError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code, syscall: "connect" });
const named = (name: string, message = "x") => Object.assign(new Error(message), { name });

describe("isBackendUnavailable", () => {
  it.each([
    ["READONLY reply", new ReplyError("READONLY You can't write against a read only replica.")],
    ["LOADING reply", new ReplyError("LOADING Redis is loading the dataset in memory")],
    ["CLUSTERDOWN reply", new ReplyError("CLUSTERDOWN The cluster is down")],
    ["MOVED reply", new ReplyError("MOVED 3999 127.0.0.1:6381")],
    ["OOM reply", new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
    ["NOAUTH reply", new ReplyError("NOAUTH Authentication required.")],
    ["EXECABORT after a READONLY", Object.assign(new ReplyError("EXECABORT Transaction discarded because of previous errors."), { previousErrors: [new ReplyError("READONLY x")] })],
    ["ECONNREFUSED", systemError("ECONNREFUSED")],
    ["ECONNRESET", systemError("ECONNRESET")],
    ["TLS handshake", systemError("ERR_SSL_WRONG_VERSION_NUMBER")],
    ["MaxRetriesPerRequestError", named("MaxRetriesPerRequestError")],
    ["ClusterAllFailedError", named("ClusterAllFailedError", "Failed to refresh slots cache.")],
    ["AbortError", named("AbortError", "Command aborted due to connection close")],
    ["ioredis: connection closed", new Error("Connection is closed.")],
    ["ioredis: command timeout", new Error("Command timed out")],
    ["ioredis: no offline queue", new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ["ioredis: sentinels", new Error("All sentinels are unreachable. Retrying from scratch after 10ms.")],
    ["already classified", new SessionBackendUnavailableError()],
  ])("%s: unavailable (503)", (_label, err) => {
    expect(isBackendUnavailable(err)).toBe(true);
    expect(toBackendError("get", err)).toBeInstanceOf(SessionBackendUnavailableError);
  });

  it.each([
    ["ERR reply (unknown command, syntax)", new ReplyError("ERR unknown command 'PEXPIRE'")],
    ["WRONGTYPE reply", new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value")],
    ["NOSCRIPT reply", new ReplyError("NOSCRIPT No matching script.")],
    ["EXECABORT after an ERR", Object.assign(new ReplyError("EXECABORT Transaction discarded because of previous errors."), { previousErrors: [new ReplyError("ERR syntax error")] })],
    ["TypeError", new TypeError("Cannot read properties of undefined (reading 'username')")],
    ["RangeError", new RangeError("ttlSeconds must be a positive number")],
    ["a plain Error whose text merely mentions a timeout", new Error("the lock timed out")],
    ["a plain Error whose text mentions ECONNREFUSED (no code)", new Error("ECONNREFUSED in a message")],
    ["not an Error", "boom"],
  ])("%s: a bug, rethrown as itself (500)", (_label, err) => {
    expect(isBackendUnavailable(err)).toBe(false);
    expect(toBackendError("get", err)).toBe(err);
  });

  it("the 503 message names the operation and the reply code, never the reply text", () => {
    const err = toBackendError("set", new ReplyError("READONLY You can't write against a read only replica.")) as Error;
    expect(err.message).toBe("the session backend is unavailable (set: READONLY)");
    expect(replyCode(new ReplyError("ERR x"))).toBe("ERR");
  });
});
