/**
 * The behaviour every shipped proxy config must have, run against a real proxy process (nginx, Caddy) in
 * front of the BUILT service (Redis backend, private redis-server) and an upstream that echoes what it
 * receives. Used by proxy-nginx.test.ts and proxy-caddy.test.ts.
 */
import { connect } from "node:net";
import { join } from "node:path";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { headerValues, startEchoUpstream, type EchoUpstream } from "../helpers/echo-upstream";
import type { ProxyProcess } from "../helpers/proxy-process";
import { http, removeTempDir, sessionCookie, startService, tempDir, writeUsersFile, type ServiceHandle } from "../helpers/service";

const PASSWORD = "alice-password-1";
const BROWSER = { accept: "text/html,application/xhtml+xml,*/*;q=0.8", "sec-fetch-mode": "navigate" };
const API = { accept: "application/json" };

/**
 * A GET sent byte for byte, so that several spellings of one header name go out as separate lines (Node's
 * http client merges names case-insensitively). Resolves with the status code.
 */
function rawGet(port: number, path: string, lines: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("latin1");
    socket.setTimeout(10_000, () => socket.destroy(new Error(`GET ${path} timed out`)));
    socket.on("connect", () => socket.write([`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...lines, "Connection: close", "", ""].join("\r\n")));
    socket.on("data", (d: string) => (data += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}

const SPOOFED = ["Remote-User: bob", "remote-user: eve", "REMOTE-USER: root", "Remote_User: mallory", "remote_user: trudy", "REMOTE_USER: oscar"];

export function describeProxy(name: string, start: (servicePort: number, appPort: number) => Promise<ProxyProcess>): void {
  describe(`${name} in front of the service (shipped config)`, () => {
    let redis: RedisServerHandle;
    let dir: string;
    let service: ServiceHandle;
    let upstream: EchoUpstream;
    let proxy: ProxyProcess;
    let base: string;

    beforeAll(async () => {
      dir = tempDir(`proxy-${name}`);
      await writeUsersFile(join(dir, "users.json"), { alice: PASSWORD });
      redis = await startRedisServer();
      service = await startService({
        env: { BANGUI_USERS_FILE: join(dir, "users.json"), BANGUI_REDIS_URL: redis.url, BANGUI_REDIS_COMMAND_TIMEOUT_MS: "300" },
      });
      upstream = await startEchoUpstream();
      proxy = await start(service.port, upstream.port);
      base = `http://127.0.0.1:${proxy.port}`;
    }, 60_000);

    afterAll(async () => {
      await proxy?.stop();
      await upstream?.close();
      await service?.stop().catch(() => service.kill());
      await redis?.stop();
      if (dir) removeTempDir(dir);
    }, 30_000);

    const get = (path: string, headers: Record<string, string>, cookie?: string) =>
      http(base, "GET", path, { headers, ...(cookie === undefined ? {} : { cookie }) });

    async function loginThroughProxy(redirect?: string): Promise<{ token: string; redirect: string }> {
      const res = await http(base, "POST", "/api/auth/login", { body: { username: "alice", password: PASSWORD, ...(redirect ? { redirect } : {}) } });
      if (res.status !== 200) throw new Error(`login through ${name} answered ${res.status}: ${res.text}\n${proxy.logs()}`);
      return { token: sessionCookie(res)!.value, redirect: res.json.redirect };
    }

    test("no session: an API client gets 401 and the upstream is never asked", async () => {
      const before = upstream.received.length;
      const res = await get("/app/data", API);
      expect(res.status).toBe(401);
      expect(upstream.received.length).toBe(before);
    });

    test("no session: a browser is sent to /login?rd=<the page it asked for>, and a login there leads back to it", async () => {
      const res = await get("/app/page?x=1&y=a%20b", BROWSER);
      expect(res.status).toBe(302);
      const location = new URL(res.headers.location!, base);
      expect(location.origin).toBe(base);
      expect(location.pathname).toBe("/login");
      const rd = location.searchParams.get("rd");
      expect(rd).toBe("/app/page?x=1&y=a%20b");
      const page = await get(`${location.pathname}${location.search}`, BROWSER);
      expect(page.status).toBe(200);
      expect(page.text).toContain('id="login-form"');
      const { redirect } = await loginThroughProxy(rd!);
      expect(redirect).toBe(rd);
    });

    test("after a login through the proxy the upstream sees Remote-User: <user>, whatever identity headers the client sent", async () => {
      const { token } = await loginThroughProxy();
      const before = upstream.received.length;
      const status = await rawGet(proxy.port, "/app/whoami", ["Accept: application/json", `Cookie: bangui_session=${token}`, ...SPOOFED]);
      expect(status).toBe(200);
      expect(upstream.received.length).toBe(before + 1);
      const seen = upstream.received.at(-1)!;
      expect(seen.url).toBe("/app/whoami");
      // One identity header reaches the upstream, under any spelling: the service's.
      expect(headerValues(seen, "remote-user")).toEqual(["alice"]);
    });

    test("a client-sent Remote-User without a session is refused before the upstream", async () => {
      const before = upstream.received.length;
      expect(await rawGet(proxy.port, "/app/whoami", ["Accept: application/json", "Remote-User: alice", "Remote_User: alice"])).toBe(401);
      expect(upstream.received.length).toBe(before);
    });

    test("a logout through the proxy makes the next protected request fail at once", async () => {
      const { token } = await loginThroughProxy();
      expect((await get("/app/a", API, token)).status).toBe(200);
      const out = await http(base, "POST", "/api/auth/logout", { cookie: token });
      expect(out.status).toBe(204);
      const before = upstream.received.length;
      expect((await get("/app/a", API, token)).status).toBe(401);
      expect(upstream.received.length).toBe(before);
    });

    test("Redis down: the protected request fails closed (5xx, the upstream never asked)", async () => {
      const { token } = await loginThroughProxy();
      expect((await get("/app/b", API, token)).status).toBe(200);
      await redis.kill("SIGKILL");
      const before = upstream.received.length;
      for (const headers of [API, BROWSER]) {
        const res = await get("/app/b", headers, token);
        expect([res.status, res.headers["remote-user"]]).toEqual([503, undefined]);
      }
      expect(upstream.received.length).toBe(before);
    });
  });
}
