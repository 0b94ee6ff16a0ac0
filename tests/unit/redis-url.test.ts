import { parseRedisUrl } from "../../src/redis-url";

describe("parseRedisUrl", () => {
  it.each([
    ["redis://127.0.0.1:6390", { kind: "standalone", tls: false, host: "127.0.0.1", port: 6390, db: 0 }],
    ["redis://localhost", { kind: "standalone", host: "localhost", port: 6379, db: 0 }],
    ["rediss://cache.example:6380/2", { kind: "standalone", tls: true, host: "cache.example", port: 6380, db: 2 }],
    ["REDIS://h:1/0", { kind: "standalone", host: "h", port: 1, db: 0 }],
    ["redis://[::1]:6390", { kind: "standalone", host: "::1", port: 6390 }],
    ["redis://:pw@h:1", { kind: "standalone", password: "pw" }],
    ["redis://user:p%40ss%3Aw@h:1", { kind: "standalone", username: "user", password: "p@ss:w" }],
    ["redis://user@h:1", { kind: "standalone", username: "user" }],
    [
      "redis+sentinel://s1:26379,s2,s3:26380/mymaster/3",
      {
        kind: "sentinel",
        masterName: "mymaster",
        db: 3,
        sentinels: [
          { host: "s1", port: 26379 },
          { host: "s2", port: 26379 },
          { host: "s3", port: 26380 },
        ],
      },
    ],
    ["redis+sentinel://u:p@s1/m", { kind: "sentinel", masterName: "m", db: 0, username: "u", password: "p" }],
    [
      "redis+cluster://n1:7000,n2:7001",
      { kind: "cluster", nodes: [{ host: "n1", port: 7000 }, { host: "n2", port: 7001 }] },
    ],
    ["redis+cluster://n1", { kind: "cluster", nodes: [{ host: "n1", port: 6379 }] }],
  ])("%s", (url, expected) => {
    expect(parseRedisUrl(url)).toMatchObject(expected);
  });

  it("a URL without credentials has no username/password fields", () => {
    const t = parseRedisUrl("redis://h:1");
    expect(t).not.toHaveProperty("username");
    expect(t).not.toHaveProperty("password");
  });

  it.each([
    ["127.0.0.1:6379", /redis:\/\/host:port/],
    ["http://h:1", /unknown scheme/],
    ["redis://a:1,b:2", /one host/],
    ["redis://h:0", /out of range/],
    ["redis://h:70000", /out of range/],
    ["redis://h/0/1", /at most one database/],
    ["redis://h/x", /not a number/],
    ["redis://h/123", /not a number/],
    ["redis+sentinel://s1", /master name/],
    ["redis+sentinel://s1/m/1/2", /masterName/],
    ["redis+cluster://n1/0", /no path/],
    ["redis://bad host:1", /host\[:port\]/],
    ["redis://", /host/],
  ])("rejects %s", (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it.each(["redis://admin:hunter2@bad host:1", "redis://admin:hunter2@h:99999", "bogus://admin:hunter2@h"])(
    "the error for %s carries no credential",
    (url) => {
      try {
        parseRedisUrl(url);
        throw new Error("expected a throw");
      } catch (err) {
        expect((err as Error).message).not.toMatch(/hunter2|admin/);
      }
    },
  );
});
