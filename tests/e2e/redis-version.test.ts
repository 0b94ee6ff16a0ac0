/**
 * The built service refuses a Redis older than 7.0 at start: exit code 1 and a message naming the
 * version. There is no Redis 6 binary here, so the "old server" is a STAND-IN, stated plainly: a tiny
 * loopback TCP server speaking just enough RESP (every command answers +OK, INFO answers a
 * `redis_version:6.2.14` section). It proves the service reads the version and stops on it; that a real
 * 7.x is accepted is proved against the real redis-server (tests/integration/redis-version.test.ts, and
 * every e2e test that starts the service).
 */
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { MAIN_JS, removeTempDir, runNode, tempDir } from "../helpers/service";

jest.setTimeout(60_000);

let fake: Server;
let port: number;
let dir: string;
beforeAll(async () => {
  dir = tempDir("redis-version");
  fake = createServer((socket) => {
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      // Requests are RESP arrays of bulk strings: answer each complete one by its command name.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buffered);
        if (!m) return;
        let at = m[0].length;
        const parts: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const len = /^\$(\d+)\r\n/.exec(buffered.slice(at));
          if (!len || buffered.length < at + len[0].length + Number(len[1]) + 2) return;
          at += len[0].length;
          parts.push(buffered.slice(at, at + Number(len[1])));
          at += Number(len[1]) + 2;
        }
        buffered = buffered.slice(at);
        if (parts[0]?.toUpperCase() === "INFO") {
          const body = "# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n";
          socket.write(`$${Buffer.byteLength(body)}\r\n${body}\r\n`);
        } else {
          socket.write("+OK\r\n");
        }
      }
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  port = (fake.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => fake?.close(r));
  if (dir) removeTempDir(dir);
});

test("a Redis 6.2 stand-in stops the start: exit 1, the message names the version", async () => {
  const result = await runNode(MAIN_JS, [], {
    env: { BANGUI_REDIS_URL: `redis://127.0.0.1:${port}`, BANGUI_USERS_FILE: join(dir, "users.json") },
    timeoutMs: 45_000,
  });
  expect({ code: result.code, signal: result.signal }).toEqual({ code: 1, signal: null });
  expect(result.stderr).toContain("Redis 6.2.14 at 127.0.0.1:");
  expect(result.stderr).toContain("needs Redis 7.0 or later");
});
