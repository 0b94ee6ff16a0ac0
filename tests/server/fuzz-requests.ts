/**
 * fast-check generators of hostile HTTP requests for the fuzz suite (fuzz.test.ts): what node:http can
 * express, and raw bytes for what it refuses to write (NUL and CR bytes in headers, broken request lines,
 * bad framing). tests/helpers/http-send.ts sends them.
 *
 * No generated request ever carries a valid credential: the generators never see a real password or
 * token. That is what lets the oracle say "no 2xx on an auth route".
 */
import fc from "fast-check";
import { gzipSync } from "node:zlib";
import type { FuzzRequest, HttpFuzzRequest, RawFuzzRequest } from "../helpers/http-send";

const LOGIN = "/api/auth/login";
const KNOWN_PATHS = [
  LOGIN,
  "/api/auth/session",
  "/api/auth/logout",
  "/api/auth/logout-all",
  "/api/auth/sessions",
  "/api/auth/sessions/0123456789abcdef0123456789abcdef",
  "/healthz",
  "/readyz",
  "/metrics",
  "/",
  "/api",
  "/api/auth",
];
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "PURGE", "MKCOL", "LOCK", "SEARCH", "LINK"];
const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty"];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=UTF-16",
  "application/json; charset=latin1",
  "application/json; charset=utf-7",
  "application/vnd.api+json",
  "APPLICATION/JSON",
  "text/plain",
  "text/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/json;;;",
  "*/*",
  "",
];

/** Any code point, NUL and lone surrogates included. */
const anyText = (maxLength = 64) => fc.string({ unit: "binary", maxLength });
/** What a header value may hold for Node's client (latin1 without control characters but tab). */
const headerText = (maxLength = 64) =>
  fc.string({
    unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x09), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c)),
    maxLength,
  });
/** Characters Node's client accepts in a path (0x21-0xff). */
const pathText = (maxLength = 40) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength });
/** A base64url string of a token's shape (43 characters): well-formed, never issued. */
const tokenShaped = fc.stringMatching(/^[A-Za-z0-9_-]{43}$/);

const usernameArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("alice", "bob", "ALICE", "alice\u0000", "alice ", " alice", "al\u0130ce", "root", "admin", "") },
  { weight: 3, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 250, maxLength: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) },
);
const passwordArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 1000, maxLength: 1100 }) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS, "\u0000", "null", "") },
);

/** A JSON value of any shape, with prototype-pollution keys mixed into its objects. */
const pollutedJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 8 })), tie("value")), { maxLength: 4 })
      // Computed keys: "__proto__" becomes an own property (and so a JSON key), not the prototype.
      .map((entries) => Object.fromEntries(entries)),
  ),
})).value;

/** JSON text of a login-like object: the two fields of any type, extra and pollution keys, duplicates. */
const loginJsonText = fc
  .record({
    username: fc.oneof({ weight: 4, arbitrary: usernameArb }, { weight: 1, arbitrary: pollutedJson }),
    password: fc.oneof({ weight: 4, arbitrary: passwordArb }, { weight: 1, arbitrary: pollutedJson }),
    extra: fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS, "isAdmin", "role", "username", "password"), pollutedJson), { maxLength: 3 }),
    drop: fc.oneof({ weight: 8, arbitrary: fc.constant("none") }, { weight: 1, arbitrary: fc.constantFrom("username", "password") }),
  })
  .map(({ username, password, extra, drop }) => {
    const parts: string[] = [];
    if (drop !== "username") parts.push(`"username":${JSON.stringify(username) ?? "null"}`);
    if (drop !== "password") parts.push(`"password":${JSON.stringify(password) ?? "null"}`);
    // Written by hand so that duplicate keys and "__proto__" reach the parser as they are.
    for (const [key, value] of extra) parts.push(`${JSON.stringify(key)}:${JSON.stringify(value) ?? "null"}`);
    return { text: `{${parts.join(",")}}`, secrets: typeof password === "string" ? [password] : [] };
  });

/** Nested arrays or objects, far deeper than any parser recursion budget of a naive validator. */
const deepJsonText = fc.record({ depth: fc.integer({ min: 1, max: 6000 }), kind: fc.constantFrom("array", "object", "unclosed") }).map(({ depth, kind }) => {
  if (kind === "array") return "[".repeat(depth) + "]".repeat(depth);
  if (kind === "object") return '{"username":'.repeat(depth) + '"x"' + "}".repeat(depth);
  return "[".repeat(depth);
});

/** Bodies past the 16 KiB default limit, as plain JSON and as a small gzip that inflates beyond it. */
const hugeBody = fc.oneof(
  fc.integer({ min: 16_000, max: 70_000 }).map((n) => ({ body: Buffer.from(`{"username":"alice","password":"${"p".repeat(n)}"}`), encoding: undefined })),
  fc.integer({ min: 20_000, max: 2_000_000 }).map((n) => ({ body: gzipSync(Buffer.from(`{"username":"${"a".repeat(n)}"}`)), encoding: "gzip" })),
);

/** A login request: every body shape and content type that can reach the JSON parser and the schema. */
const loginRequest: fc.Arbitrary<HttpFuzzRequest> = fc
  .record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constant("POST") }, { weight: 1, arbitrary: fc.constantFrom("PUT", "GET", "PATCH") }),
    contentType: fc.oneof(
      { weight: 6, arbitrary: fc.constant("application/json") },
      { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
      { weight: 1, arbitrary: headerText(40) },
    ),
    payload: fc.oneof(
      { weight: 10, arbitrary: loginJsonText.map((l) => ({ body: Buffer.from(l.text), secrets: l.secrets, encoding: undefined as string | undefined })) },
      { weight: 2, arbitrary: pollutedJson.map((v) => ({ body: Buffer.from(JSON.stringify(v) ?? "null"), secrets: [] as string[], encoding: undefined as string | undefined })) },
      { weight: 1, arbitrary: deepJsonText.map((t) => ({ body: Buffer.from(t), secrets: [] as string[], encoding: undefined as string | undefined })) },
      { weight: 1, arbitrary: hugeBody.map((h) => ({ ...h, secrets: [] as string[] })) },
      { weight: 1, arbitrary: anyText(200).map((t) => ({ body: Buffer.from(t), secrets: [] as string[], encoding: undefined as string | undefined })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ body: Buffer.from(b), secrets: [] as string[], encoding: undefined as string | undefined })) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(loginJsonText, fc.constantFrom("gzip", "deflate", "br", "identity", "compress", "x-garbage"), fc.boolean())
          .map(([l, encoding, garble]) => ({
            body: garble ? Buffer.from(l.text) : gzipSync(Buffer.from(l.text)),
            secrets: l.secrets,
            encoding: encoding as string | undefined,
          })),
      },
    ),
    chunked: fc.boolean(),
    extraHeaders: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), headerText(30), { maxKeys: 2 }),
  })
  .map(({ method, contentType, payload, chunked, extraHeaders }) => {
    const headers: Record<string, string | string[]> = { ...extraHeaders };
    if (contentType !== "") headers["content-type"] = contentType;
    if (payload.encoding !== undefined) headers["content-encoding"] = payload.encoding;
    return { kind: "http" as const, method, path: LOGIN, headers, body: payload.body, chunked, secrets: payload.secrets };
  });

/** Cookie and Authorization headers of every broken shape; none holds an issued token. */
const credentialHeaders = fc
  .record({
    cookie: fc.option(
      fc.oneof(
        tokenShaped.map((t) => `bangui_session=${t}`),
        headerText(80).map((t) => `bangui_session=${t}`),
        fc.array(tokenShaped, { minLength: 2, maxLength: 4 }).map((ts) => ts.map((t) => `bangui_session=${t}`).join("; ")),
        fc.array(headerText(30), { minLength: 1, maxLength: 3 }),
        headerText(120),
        fc.integer({ min: 8000, max: 20_000 }).map((n) => `bangui_session=${"A".repeat(n)}`),
        fc.constantFrom("bangui_session=", "bangui_session", "=bangui_session", "bangui_session=%", "bangui_session=%ZZ", "bangui_session=\"unterminated"),
      ),
      { nil: undefined },
    ),
    authorization: fc.option(
      fc.oneof(
        tokenShaped.map((t) => `Bearer ${t}`),
        headerText(80).map((t) => `Bearer ${t}`),
        headerText(80),
        tokenShaped.map((t) => `bearer    ${t}   `),
        fc.array(tokenShaped.map((t) => `Bearer ${t}`), { minLength: 2, maxLength: 3 }),
        fc.integer({ min: 8000, max: 20_000 }).map((n) => `Bearer ${"x".repeat(n)}`),
        fc.constantFrom("Bearer", "Bearer ", "Basic YWxpY2U6YWxpY2U=", "Bearer undefined", "Bearer null", "Bearer \t"),
      ),
      { nil: undefined },
    ),
  })
  .map(({ cookie, authorization }) => {
    const headers: Record<string, string | string[]> = {};
    if (cookie !== undefined) headers.cookie = cookie;
    if (authorization !== undefined) headers.authorization = authorization;
    const secrets = [cookie, authorization].flat().filter((s): s is string => typeof s === "string");
    return { headers, secrets };
  });

/** A path: a known route, a mutation of one, or anything Node's client will write. */
const pathArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...KNOWN_PATHS), fc.constantFrom("", "/", "//", "?", "?a=1&a=2", "#x", "/..", "/%2e%2e/session", "%00", "/%", "/%ZZ", "?__proto__[x]=1"), pathText(12))
      .map(([p, suffix, tail]) => `${p}${suffix}${tail}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("/api/auth/sessions/", "/API/AUTH/SESSION", "/api/auth/../auth/session", "//api/auth/session", "*", "/api/auth/sessions/%2F..%2F") },
  { weight: 2, arbitrary: pathText(60).map((p) => `/${p}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("/api/auth/sessions/"), fc.oneof(pathText(40), fc.stringMatching(/^[0-9a-f]{32}$/))).map(([a, b]) => a + b) },
);

/** A session route with the method it serves: what reaches the session lookup with a broken credential. */
const sessionRouteRequest: fc.Arbitrary<HttpFuzzRequest> = fc
  .record({
    route: fc.constantFrom(
      ["GET", "/api/auth/session"],
      ["HEAD", "/api/auth/session"],
      ["GET", "/api/auth/sessions"],
      ["POST", "/api/auth/logout-all"],
      ["POST", "/api/auth/logout"],
      ["DELETE", "/api/auth/sessions/0123456789abcdef0123456789abcdef"],
      ["DELETE", "/api/auth/sessions/not-a-handle"],
    ),
    credentials: credentialHeaders,
  })
  .map(({ route: [method, path], credentials }) => ({ kind: "http" as const, method: method!, path: path!, headers: credentials.headers, secrets: credentials.secrets }));

/** Any method (known ones and random tokens) on any path, with broken credentials and maybe a body. */
const routeRequest: fc.Arbitrary<HttpFuzzRequest> = fc
  .record({
    method: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Z][A-Z-]{0,11}$/) }),
    path: pathArb,
    credentials: credentialHeaders,
    body: fc.option(fc.oneof(pollutedJson.map((v) => Buffer.from(JSON.stringify(v) ?? "null")), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b))), { nil: undefined }),
    json: fc.boolean(),
  })
  .map(({ method, path, credentials, body, json }) => {
    const headers = { ...credentials.headers };
    if (body !== undefined && json) headers["content-type"] = "application/json";
    return { kind: "http" as const, method, path, headers, ...(body !== undefined ? { body } : {}), secrets: credentials.secrets };
  });

/** A header value with bytes no client library will send: NUL, bare CR, bare LF, DEL, 8-bit. */
const nastyHeaderValue = fc.string({
  unit: fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x20, max: 0xff })).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 40,
});

/** Complete messages that break HTTP itself; each says `Connection: close` so the server ends it. */
const rawRequest: fc.Arbitrary<RawFuzzRequest> = fc
  .oneof(
    fc.tuple(fc.constantFrom(...KNOWN_PATHS), fc.constantFrom("cookie", "authorization", "content-type", "x-y"), nastyHeaderValue).map(
      ([path, name, value]) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${name}: ${value}\r\nConnection: close\r\n\r\n`,
    ),
    fc.tuple(nastyHeaderValue, fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1")).map(
      ([target, version]) => `GET /${target} ${version}\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ),
    fc.constantFrom(
      // Conflicting and malformed framing of a login body.
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`,
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n`,
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n`,
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST ${LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
      `GET /api/auth/session HTTP/1.1\r\nHost: x\r\nbad header line\r\nConnection: close\r\n\r\n`,
      `GET /api/auth/session HTTP/1.1\r\nHost: x\r\n : empty name\r\nConnection: close\r\n\r\n`,
      `GET /api/auth/session HTTP/1.1\r\nHost: x\r\nCookie: a\r\n folded=continuation\r\nConnection: close\r\n\r\n`,
      `BREW /api/auth/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ),
    // Bytes of no protocol at all, ended the way a header block ends so the parser decides at once. Only
    // CR and LF would be no request at all (the parser skips empty lines and waits for one).
    fc
      .uint8Array({ minLength: 1, maxLength: 200 })
      .filter((b) => b.some((x) => x !== 13 && x !== 10))
      .map((b) => `${Buffer.from(b).toString("latin1")}\r\n\r\n`),
  )
  .map((text) => ({ kind: "raw" as const, bytes: Buffer.from(text, "latin1") }));

/** Every kind of hostile request, weighted towards what reaches the application code. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 5, arbitrary: loginRequest },
  { weight: 3, arbitrary: sessionRouteRequest },
  { weight: 3, arbitrary: routeRequest },
  { weight: 1, arbitrary: rawRequest },
);
