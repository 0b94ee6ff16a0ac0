/**
 * The HTTP server around the Express app: listen, and a graceful close that stops accepting, lets the
 * requests in flight finish, closes idle keep-alive connections, and destroys what is left at a deadline.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { parserErrorAnswer } from "./errors";

/** A request handler (an Express app is one). */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What `drain` reports. */
export interface DrainResult {
  /** True when the deadline came first and open connections were destroyed. */
  forced: boolean;
  /** Requests still in flight at the deadline (0 when not forced). */
  abandoned: number;
}

/** An HTTP server that knows its connections and the requests running on each. */
export interface GracefulServer {
  readonly server: Server;
  /** Listens on host:port (0: any free port; in a cluster worker the primary owns the socket). */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Requests being served right now. */
  inFlight(): number;
  /**
   * Stops accepting connections, answers the requests in flight (with `Connection: close`), closes
   * each connection as soon as it is idle, and after `timeoutMs` destroys whatever is still open.
   * Idempotent: a second call returns the first call's promise.
   */
  drain(timeoutMs: number): Promise<DrainResult>;
}

/**
 * Answers a request Node's parser refused (bad request line, invalid header bytes, oversized headers,
 * unknown method) with the same JSON error body as every other 4xx, instead of Node's empty default.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Node's own default checks the same: no answer on a dead socket, or once a response has begun (the
  // peer would read a corrupt stream). `_httpMessage` is the response in flight on this socket, if any.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const answer = parserErrorAnswer(err.code);
  const body = JSON.stringify({ error: answer.code, message: answer.message });
  // The answer to a HEAD has no body, or the client reads the body as the next response. The method is
  // known only from the bytes the parser refused (`rawPacket`, the chunk being parsed).
  const raw = (err as NodeJS.ErrnoException & { rawPacket?: unknown }).rawPacket;
  const head = Buffer.isBuffer(raw) && raw.subarray(0, 5).toString("latin1") === "HEAD ";
  socket.write(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${head ? "" : body}`,
  );
  (socket as Socket).destroySoon();
}

/** Options of createGracefulServer: how long a client may take to send a request. */
export interface GracefulServerOptions {
  /** A request whose headers are not all in after this answers 408 and is closed (slow-header clients). @default 10_000 */
  headersTimeoutMs?: number;
  /** A request not entirely received (body included) after this answers 408 and is closed. @default 30_000 */
  requestTimeoutMs?: number;
}

/** Wraps `handler` in a node:http server with connection tracking for `drain`. */
export function createGracefulServer(handler: RequestHandler, options: GracefulServerOptions = {}): GracefulServer {
  // Node's defaults (60 s for headers, 300 s for a request, checked every 30 s) let a client that trickles
  // bytes hold a connection for minutes; a login body is at most a few KiB.
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(headersTimeout, options.requestTimeoutMs ?? 30_000);
  const server = createServer({
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
  });
  server.on("clientError", onClientError);
  // Requests in flight per connection: a connection at 0 is idle (keep-alive) and may be closed.
  const connections = new Map<Socket, number>();
  const responses = new Set<ServerResponse>();
  let draining: Promise<DrainResult> | undefined;

  server.on("connection", (socket: Socket) => {
    connections.set(socket, 0);
    socket.once("close", () => connections.delete(socket));
  });

  // Registered before the handler, so the header is set before the app writes anything.
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    connections.set(socket, (connections.get(socket) ?? 0) + 1);
    if (draining) res.setHeader("Connection", "close");
    responses.add(res);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      responses.delete(res);
      const left = Math.max(0, (connections.get(socket) ?? 1) - 1);
      if (connections.has(socket)) connections.set(socket, left);
      // A keep-alive connection whose response headers went out before the drain began: close it now.
      if (draining && left === 0) setImmediate(() => socket.destroySoon());
    };
    res.once("finish", finish);
    res.once("close", finish);
  });
  server.on("request", handler);

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once("error", onError);
        server.listen(port, host, () => {
          server.off("error", onError);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    inFlight() {
      let n = 0;
      for (const count of connections.values()) n += count;
      return n;
    },
    drain(timeoutMs) {
      if (draining) return draining;
      draining = new Promise<DrainResult>((resolve) => {
        let forced = false;
        let abandoned = 0;
        const timer = setTimeout(() => {
          forced = true;
          for (const [socket, count] of connections) {
            abandoned += count;
            socket.destroy();
          }
        }, timeoutMs);
        timer.unref();
        // close() stops accepting (in a cluster worker: tells the primary to stop sending connections)
        // and calls back once every connection has ended.
        server.close(() => {
          clearTimeout(timer);
          resolve({ forced, abandoned });
        });
        for (const [socket, count] of connections) if (count === 0) socket.destroySoon();
        // Requests that began before the drain: their answer tells the client not to reuse the connection.
        for (const res of responses) if (!res.headersSent) res.setHeader("Connection", "close");
      });
      return draining;
    },
  };
}
