import { createRedirectPolicy, DEFAULT_REDIRECT, isSafeRedirect, parseHostRule, safeRedirect } from "../../src/auth/redirects";

const policy = createRedirectPolicy(["app.example.com", "*.corp.example.org", "auth.example.com:8443"]);

/**
 * Known open-redirect payloads (the shapes collected by public payload lists: protocol-relative, backslash,
 * userinfo, scheme confusion, whitespace and control characters, percent- and double-encoding, Unicode
 * look-alikes, data/javascript schemes), aimed at evil.com while app.example.com is the allowed host.
 */
const HAND_WRITTEN = [
  "//evil.com",
  "///evil.com",
  "////evil.com",
  "//////evil.com",
  "/\\evil.com",
  "\\/evil.com",
  "\\\\evil.com",
  "/\\/evil.com",
  "//\\evil.com",
  "///\\evil.com",
  "/\\/\\evil.com",
  "//\\/\\evil.com/",
  "\\evil.com",
  "/%09/evil.com",
  "/%0a/evil.com",
  "/%0d/evil.com",
  "/%5cevil.com",
  "/%5C%5Cevil.com",
  "/%2f%2fevil.com",
  "/%2F/evil.com",
  "/%252f%252fevil.com",
  "/%25252f%25252fevil.com",
  "%2f%2fevil.com",
  "%2F%2Fevil.com",
  "//evil.com/%2f..",
  "////evil.com/%2f%2e%2e",
  "//evil%E3%80%82com",
  "//evil.com@app.example.com",
  "//app.example.com@evil.com",
  "/ /evil.com",
  " //evil.com",
  "\t//evil.com",
  "\n//evil.com",
  "/\t/evil.com",
  "/\r\n/evil.com",
  "/\u0000/evil.com",
  "/\u3000/evil.com",
  "/\ufeff/evil.com",
  "/\u2028/evil.com",
  "/%",
  "/%zz",
  "/%E0%A4%A",
  "evil.com",
  "evil.com/",
  "www.evil.com",
  "app.example.com",
  "app.example.com/path",
  ".evil.com",
  "@evil.com",
  "https:evil.com",
  "http:evil.com",
  "https:/evil.com",
  "https:\\\\evil.com",
  "https:/\\evil.com",
  "http:/\\/\\evil.com",
  "https://evil.com",
  "http://evil.com",
  "HTTPS://EVIL.COM",
  "https://evil.com/",
  "https://evil.com#app.example.com",
  "https://evil.com?app.example.com",
  "https://evil.com/app.example.com",
  "https://evil.com\\app.example.com",
  "https://evil.com%2fapp.example.com",
  "https://evil.com%23app.example.com",
  "https://evil.com%3F.app.example.com",
  "https://app.example.com.evil.com",
  "https://app.example.com%2eevil.com",
  "https://app.example.com@evil.com",
  "https://app.example.com:443@evil.com",
  "https://app.example.com%40evil.com",
  "https://app.example.com:@evil.com",
  "https://:@evil.com\\@app.example.com",
  "https://user:pass@app.example.com/",
  "https://evil.com@app.example.com",
  "https://evil.com\\@app.example.com",
  "https://evil.com\\.app.example.com",
  "https://evil.com&@app.example.com#@evil.com",
  "https://app.example.com\\@evil.com",
  "https://app.example.com\\.evil.com",
  "https://evilapp.example.com",
  "https://xapp.example.com",
  "https://app.example.comevil.com",
  "https://app.example.co",
  "https://example.com",
  "https://corp.example.org",
  "https://corp.example.org.evil.com",
  "https://evilcorp.example.org",
  "https://auth.example.com",
  "https://auth.example.com:9443/",
  "https://auth.example.com:443/",
  "http://[::1]/",
  "http://127.0.0.1/",
  "http://2130706433/",
  "http://0x7f000001/",
  "https://evil。com",
  "https://evil%E3%80%82com",
  "https://ｅｖｉｌ.com",
  "https://evil.com%00.app.example.com",
  "https://app.example.com%00.evil.com",
  "https://app.example.com\u0000.evil.com",
  "https://app.example.com/\u0000",
  "https://app.example.com/\t",
  " https://app.example.com/",
  "https://app.example.com /",
  "https://app.example.com/%0d%0aSet-Cookie:x=y",
  "https://app.example.com/%250d%250a",
  "https://app.example.com/%5c",
  "https://app.example.com/%",
  "https:///evil.com",
  "https:////evil.com",
  "http:///\\evil.com",
  "javascript:alert(1)",
  "JavaScript:alert(1)",
  "javascript://app.example.com/%0aalert(1)",
  "javascript://%0aalert(1)",
  "java\tscript:alert(1)",
  "\u0001javascript:alert(1)",
  "data:text/html,<script>alert(1)</script>",
  "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
  "vbscript:msgbox(1)",
  "file:///etc/passwd",
  "ftp://app.example.com/",
  "ws://app.example.com/",
  "blob:https://app.example.com/x",
  "//google.com/%2f..",
  "/https://evil.com".replace("/", "\\"),
  "",
  " ",
  "/",
].filter((p) => p !== "/");

/** Generated variants: every prefix trick around evil.com, raw and encoded once and twice. */
function generated(): string[] {
  const prefixes = ["//", "///", "/\\", "\\\\", "/\\/", "\\/", "/%2f", "/%5c", "%2f%2f", "/%09/", "/%0a/", "/%00/", "https:", "https:/", "http:\\\\", "//%2f", "%20//"];
  const hosts = ["evil.com", "evil.com/", "evil.com/app.example.com", "evil.com%23.app.example.com", "app.example.com@evil.com"];
  const out: string[] = [];
  for (const prefix of prefixes) {
    for (const host of hosts) {
      const raw = `${prefix}${host}`;
      out.push(raw, encodeURIComponent(raw));
      // Under a leading slash, "https:..." or " //..." is a path of this origin (kept, see below); the others are not.
      if (!prefix.startsWith("http") && !prefix.startsWith("%20")) out.push(`/${encodeURIComponent(raw)}`, `/${encodeURIComponent(encodeURIComponent(raw))}`);
    }
  }
  return out;
}

const REFUSED = [...new Set([...HAND_WRITTEN, ...generated()])];

describe("safeRedirect refuses known open-redirect payloads", () => {
  it(`the list holds hundreds of payloads (${REFUSED.length})`, () => {
    expect(REFUSED.length).toBeGreaterThan(300);
  });

  it.each(REFUSED.map((p) => [JSON.stringify(p), p]))("%s falls back to /account", (_label, payload) => {
    expect(isSafeRedirect(policy, payload)).toBe(false);
    expect(safeRedirect(policy, payload)).toBe(DEFAULT_REDIRECT);
  });

  it.each([[undefined], [null], [42], [["/x"]], [{ href: "/x" }], ["/" + "a".repeat(2048)]])("%p falls back", (value) => {
    expect(safeRedirect(policy, value)).toBe(DEFAULT_REDIRECT);
  });
});

describe("safeRedirect keeps what is safe", () => {
  it.each([
    "/account",
    "/app/",
    "/app/page?x=1&y=%2F#frag",
    "/a/b/../c",
    "/%7Euser/",
    "/search?q=caf%C3%A9",
    "/path;param",
    "/a//b",
    // Look like tricks, but a browser stays on this origin with each of them.
    "/.evil.com",
    "/%E3%80%82evil.com",
    "/https%3A%2F%2Fevil.com",
    "/https:evil.com",
    "https://app.example.com",
    "https://app.example.com/",
    "http://app.example.com:8080/x?y=1#z",
    "HTTPS://APP.EXAMPLE.COM/Path",
    "https://a.corp.example.org/",
    "https://a.b.corp.example.org/x",
    "https://auth.example.com:8443/",
  ])("%s is kept as it is", (target) => {
    expect(safeRedirect(policy, target)).toBe(target);
  });

  it("no allowed host: only paths", () => {
    const none = createRedirectPolicy([]);
    expect(safeRedirect(none, "/app/")).toBe("/app/");
    expect(safeRedirect(none, "https://app.example.com/")).toBe(DEFAULT_REDIRECT);
  });
});

describe("parseHostRule", () => {
  it("reads names, wildcards and ports", () => {
    expect(parseHostRule("App.Example.com")).toEqual({ name: "app.example.com", wildcard: false, port: undefined });
    expect(parseHostRule("*.example.com")).toEqual({ name: "example.com", wildcard: true, port: undefined });
    expect(parseHostRule("a.example.com:8443")).toEqual({ name: "a.example.com", wildcard: false, port: "8443" });
  });

  it.each(["", "*", "*.", "a.*.com", "https://a.com", "a.com/x", "user@a.com", "a b.com", "a.com:99999"])("%j is refused", (entry) => {
    expect(() => parseHostRule(entry)).toThrow();
  });
});
