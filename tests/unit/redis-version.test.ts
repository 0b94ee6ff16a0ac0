import { assertSupportedRedisVersion, parseRedisVersion, RedisVersionError } from "../../src/cache";

const INFO = "# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n";

describe("Redis version check", () => {
  it("reads redis_version from an INFO server answer", () => {
    expect(parseRedisVersion(INFO)).toBe("6.2.14");
    expect(parseRedisVersion("# Server\nredis_version:7.0.15\n")).toBe("7.0.15");
    expect(parseRedisVersion("# Server\r\nredis_mode:standalone\r\n")).toBeUndefined();
  });

  it.each(["7.0.0", "7.0.15", "7.2.4", "7.4.1", "8.0.2", "10.1.0"])("accepts %s", (v) => {
    expect(() => assertSupportedRedisVersion(v, "127.0.0.1:6390")).not.toThrow();
  });

  it.each(["6.2.14", "6.0.0", "5.0.7", "2.8.24", "", "garbage", undefined])("refuses %p, naming the version and the server", (v) => {
    let thrown: unknown;
    try {
      assertSupportedRedisVersion(v, "127.0.0.1:6390");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(RedisVersionError);
    const message = (thrown as Error).message;
    expect(message).toContain(v ? `Redis ${v} ` : "version unknown");
    expect(message).toContain("127.0.0.1:6390");
    expect(message).toContain("7.0 or later");
  });
});
