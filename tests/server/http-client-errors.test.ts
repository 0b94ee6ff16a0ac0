/**
 * Requests that Node's HTTP parser refuses before Express sees them get the same JSON error body as
 * every other 4xx (src/server/http.ts, onClientError), and the connection is closed.
 */
import { createGracefulServer, type GracefulServer } from "../../src/server/http";
import { sendRaw } from "../helpers/http-send";
import { makeHarness, type Harness } from "./harness";

let h: Harness;
let http: GracefulServer;
let port: number;

beforeAll(async () => {
  h = await makeHarness("memory", undefined);
  http = createGracefulServer(h.app);
  port = (await http.listen(0, "127.0.0.1")).port;
});
afterAll(async () => {
  await http?.drain(1000);
  await h?.close();
});

const raw = (text: string) => sendRaw(port, { kind: "raw", bytes: Buffer.from(text, "latin1") });

test.each([
  ["a NUL byte in a header value", "GET /api/auth/session HTTP/1.1\r\nHost: x\r\nCookie: bangui_session=a\u0000b\r\n\r\n"],
  ["an unknown method", "BREW /api/auth/session HTTP/1.1\r\nHost: x\r\n\r\n"],
  ["two different Content-Length headers", "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"],
  ["bytes that are not HTTP", "\u0016\u0003\u0001\u0000\u00a5\u0001\r\n\r\n"],
])("%s answers 400 with a JSON {error, message} and Connection: close", async (_what, text) => {
  const res = await raw(text);
  expect(res.status).toBe(400);
  expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
  expect(res.headers.connection).toBe("close");
  expect(JSON.parse(res.body.toString())).toEqual({ error: "invalid_request", message: "the request is not valid HTTP" });
});

test("headers past Node's 16 KiB limit answer 431 with a JSON body", async () => {
  const res = await raw(`GET /api/auth/session HTTP/1.1\r\nHost: x\r\nCookie: bangui_session=${"A".repeat(20_000)}\r\n\r\n`);
  expect(res.status).toBe(431);
  expect(JSON.parse(res.body.toString())).toEqual({ error: "headers_too_large", message: "the request headers are too large" });
});

test("a refused HEAD request gets the status line and headers but no body", async () => {
  const res = await raw("HEAD /api/auth/session HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n");
  expect(res.status).toBe(400);
  expect(res.body.length).toBe(0);
});

describe("slow clients", () => {
  let slow: GracefulServer;
  let slowPort: number;
  beforeAll(async () => {
    slow = createGracefulServer(h.app, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    slowPort = (await slow.listen(0, "127.0.0.1")).port;
  });
  afterAll(async () => {
    await slow?.drain(1000);
  });
  const trickle = (text: string) => sendRaw(slowPort, { kind: "raw", bytes: Buffer.from(text, "latin1") });

  test("headers that never end answer 408 JSON and the connection closes, after the headers timeout", async () => {
    const start = Date.now();
    const res = await trickle("GET /api/auth/session HTTP/1.1\r\nHost: x\r\nCookie: a");
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body.toString())).toEqual({ error: "request_timeout", message: "the request was not received in time" });
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
    // The configured timeout fired, not Node's default (60 s): far below it, whatever the machine's load.
    expect(Date.now() - start).toBeLessThan(30_000);
  });

  test("a login body that never arrives in full answers 408 JSON after the request timeout", async () => {
    const start = Date.now();
    const res = await trickle(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"username":`);
    expect(res.status).toBe(408);
    expect(Date.now() - start).toBeGreaterThanOrEqual(550);
    // The configured timeout fired, not Node's default (300 s).
    expect(Date.now() - start).toBeLessThan(30_000);
    expect(slow.inFlight()).toBe(0);
  });
});
