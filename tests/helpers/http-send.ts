/**
 * Sends one HTTP request and reads its whole answer, for tests that must send what ordinary clients will
 * not: node:http with repeated headers and explicit framing, or raw bytes on a fresh connection.
 * Both reject when nothing comes back within 5 s: a hang is a failure, never a stuck test.
 */
import { request as httpRequest, type Agent, type OutgoingHttpHeaders } from "node:http";
import { connect } from "node:net";

/** A request the node:http client can send. `headers` values that are arrays go out as repeated lines. */
export interface HttpFuzzRequest {
  kind: "http";
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Send the body as two chunks with `Transfer-Encoding: chunked` instead of a Content-Length. */
  chunked?: boolean;
  /** Strings of the request that must never come back in a response (passwords, tokens). */
  secrets: string[];
}

/** Bytes written as they are to a fresh connection, which is then left to the server to close. */
export interface RawFuzzRequest {
  kind: "raw";
  bytes: Buffer;
}

export type FuzzRequest = HttpFuzzRequest | RawFuzzRequest;

/** What came back: a status (0: the connection closed without an answer), headers, body. */
export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const RESPONSE_TIMEOUT_MS = 5000;

/** Sends one request with node:http; rejects when no answer comes within 5 s (a hang). */
export function sendHttp(port: number, agent: Agent, req: HttpFuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...req.headers };
    // Explicit framing: Node's client frames no body of a GET/DELETE/OPTIONS by itself, and unframed
    // bytes would reach the server as a second (garbage) request.
    if (req.body !== undefined) {
      if (req.chunked) headers["transfer-encoding"] = "chunked";
      else headers["content-length"] = req.body.length;
    }
    const out = httpRequest({ host: "127.0.0.1", port, method: req.method, path: req.path, headers, agent, timeout: RESPONSE_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    out.on("timeout", () => out.destroy(new Error(`no answer within ${RESPONSE_TIMEOUT_MS} ms`)));
    out.on("error", reject);
    if (req.body !== undefined && req.chunked) {
      const half = req.body.length >> 1;
      out.write(req.body.subarray(0, half));
      out.end(req.body.subarray(half));
    } else {
      out.end(req.body);
    }
  });
}

/**
 * Writes raw bytes on a new connection and reads until the server closes it; parses the first answer.
 * Rejects when the server neither answers nor closes within 5 s.
 */
export function sendRaw(port: number, req: RawFuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection neither answered nor closed within ${RESPONSE_TIMEOUT_MS} ms`));
    }, RESPONSE_TIMEOUT_MS);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined); // a reset after the answer is the server closing: read what came
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(parseRawResponse(Buffer.concat(chunks)));
    });
    socket.write(req.bytes);
  });
}

function parseRawResponse(data: Buffer): FuzzResponse {
  const end = data.indexOf("\r\n\r\n");
  if (data.length === 0 || end === -1) return { status: 0, headers: {}, body: data };
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? -1);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  return { status, headers, body: data.subarray(end + 4, end + 4 + length) };
}
