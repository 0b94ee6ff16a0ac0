import { loadConfig } from "../../src/config";
import { ConfigError } from "../../src/errors";

/** BANGUI_COOKIE_DOMAIN, BANGUI_PUBLIC_URL, BANGUI_ALLOWED_REDIRECT_HOSTS. */
describe("proxy-related configuration", () => {
  test("defaults: no domain, no public URL, no allowed host", () => {
    expect(loadConfig({})).toMatchObject({ cookieDomain: undefined, publicUrl: undefined, allowedRedirectHosts: [] });
  });

  test("the allowed hosts default to the public URL's host", () => {
    expect(loadConfig({ BANGUI_PUBLIC_URL: "https://auth.example.com/" })).toMatchObject({
      publicUrl: "https://auth.example.com",
      allowedRedirectHosts: ["auth.example.com"],
    });
    expect(loadConfig({ BANGUI_PUBLIC_URL: "http://127.0.0.1:8080" }).allowedRedirectHosts).toEqual(["127.0.0.1:8080"]);
  });

  test("a list of hosts and patterns, a cookie domain", () => {
    const c = loadConfig({ BANGUI_ALLOWED_REDIRECT_HOSTS: " app.example.com, *.example.org ,", BANGUI_COOKIE_DOMAIN: "Example.com" });
    expect(c.allowedRedirectHosts).toEqual(["app.example.com", "*.example.org"]);
    expect(c.cookieDomain).toBe("example.com");
  });

  test.each([
    ["BANGUI_PUBLIC_URL", "auth.example.com"],
    ["BANGUI_PUBLIC_URL", "ftp://auth.example.com"],
    ["BANGUI_PUBLIC_URL", "https://auth.example.com/login"],
    ["BANGUI_PUBLIC_URL", "https://user:pw@auth.example.com"],
    ["BANGUI_PUBLIC_URL", "https://auth.example.com/?x=1"],
    ["BANGUI_ALLOWED_REDIRECT_HOSTS", "https://app.example.com"],
    ["BANGUI_ALLOWED_REDIRECT_HOSTS", "a.com,*"],
    ["BANGUI_ALLOWED_REDIRECT_HOSTS", "a.*.com"],
    ["BANGUI_ALLOWED_REDIRECT_HOSTS", "a.com/path"],
    ["BANGUI_COOKIE_DOMAIN", "https://example.com"],
    ["BANGUI_COOKIE_DOMAIN", "example.com:443"],
    ["BANGUI_COOKIE_DOMAIN", "exa mple.com"],
  ])("%s=%j stops the start naming the variable", (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(name);
  });
});
