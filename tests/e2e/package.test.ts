/**
 * The package as a user gets it: `npm pack` of the tree `npm test` has just built (pretest; the pack skips
 * the prepack rebuild, a whole second tsc run, and the test checks that dist/ exists), the tarball installed into a fresh temp
 * project (ioredis as the peer, the service's optional peers for the bins), then there: require and import
 * of every entry point, no side effect on import of `.`, deep imports refused, a TypeScript consumer compiled
 * with moduleResolution node16 and bundler, `npx bangui-users` and `npx bangui-session-cache` (answering
 * /healthz, stopped by its PID), and publint + attw on what ships.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../helpers/redis-server";

jest.setTimeout(900_000);

const run = promisify(execFile);
const ROOT = resolve(__dirname, "..", "..");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
let dir: string;
let tarball: string;
let pkgDir: string;

function sh(cmd: string, args: string[], cwd = dir, input?: string): Promise<{ stdout: string; stderr: string }> {
  const child = run(cmd, args, { cwd, timeout: 600_000, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, CI: "true" } });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return child;
}

const node = (code: string, type: "commonjs" | "module" = "commonjs") =>
  sh(process.execPath, ["--input-type", type, "-e", code]).then((r) => r.stdout.trim());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bangui-pack-"));
  if (!existsSync(join(ROOT, "dist", "esm", "index.mjs"))) throw new Error("dist/ is missing: run npm run build (npm test does)");
  const packed = await sh("npm", ["pack", "--ignore-scripts", "--pack-destination", dir, "--json"], ROOT);
  tarball = join(dir, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
  await sh("npm", [
    "install", "--no-audit", "--no-fund", "--prefer-offline", tarball,
    "ioredis@^6", "express-session@^1.18", "@types/express-session@^1.18", "@types/node@^20", "@types/express@^5",
    "express@^5", "helmet@^8", "pino-http@^11", "cookie@^1", "rate-limiter-flexible@^11", "prom-client@^15",
  ]);
  pkgDir = join(dir, "node_modules", "bangui-session-cache");
});
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("the packed package in a fresh project", () => {
  it("ships built code, typings, the pages, README, LICENSE and CHANGELOG only", () => {
    const top = readdirSync(pkgDir).sort();
    expect(top).toEqual(["CHANGELOG.md", "LICENSE", "README.md", "dist", "package.json", "public"]); // public/: the service's pages
    expect(readdirSync(join(pkgDir, "dist")).sort()).toEqual(["esm", "src"]);
  });

  it("require and import every entry point", async () => {
    const names = {
      "bangui-session-cache": ["createSessionCache", "RedisSessionCache", "InMemorySessionCache", "SessionBackendUnavailableError", "isCluster"],
      "bangui-session-cache/express-session": ["RedisSessionStore"],
      "bangui-session-cache/server": ["createApp", "startService", "loadConfig"],
    };
    for (const [entry, expected] of Object.entries(names)) {
      const viaRequire = JSON.parse(await node(`console.log(JSON.stringify(Object.keys(require(${JSON.stringify(entry)}))))`)) as string[];
      const viaImport = JSON.parse(
        await node(`const m = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(m)))`, "module"),
      ) as string[];
      for (const name of expected) {
        expect(viaRequire).toContain(name);
        expect(viaImport).toContain(name);
      }
    }
    // One module instance whichever way it is loaded (the ESM entry wraps the CommonJS build).
    const same = await node(
      `import { createRequire } from "node:module"; const m = await import("bangui-session-cache");` +
        `console.log(m.RedisSessionCache === createRequire(import.meta.url)("bangui-session-cache").RedisSessionCache)`,
      "module",
    );
    expect(same).toBe("true");
  });

  it("importing . has no side effect: no prom-client, no service package loaded, no timer or socket", async () => {
    const out = await node(
      // Stdio handles (PipeWrap/TTYWrap) are the process's own streams, initialised when ioredis and pino
      // read isTTY at load: not created by the package. Anything else (a Timeout, a TCPWrap) would be.
      `const own = () => process.getActiveResourcesInfo().filter((r) => r !== "PipeWrap" && r !== "TTYWrap");` +
        `const before = own().length; require("bangui-session-cache");` +
        `const loaded = Object.keys(require.cache).filter((k) => /node_modules[\\\\/](prom-client|express|helmet|pino-http|rate-limiter-flexible|cookie)[\\\\/]/.test(k));` +
        `console.log(JSON.stringify({ loaded, newResources: own().length - before }))`,
    );
    expect(JSON.parse(out)).toEqual({ loaded: [], newResources: 0 });
  });

  it("internals cannot be deep-imported (main, the CLI, the cache files)", async () => {
    for (const path of ["dist/src/main.js", "dist/src/auth/users-cli.js", "dist/src/cache/redis.js", "dist/src/metrics"]) {
      const code = `try { require("bangui-session-cache/${path}"); console.log("loaded") } catch (e) { console.log(e.code) }`;
      expect(await node(code)).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED");
      const esm = `try { await import("bangui-session-cache/${path}"); console.log("loaded") } catch (e) { console.log(e.code) }`;
      expect(await node(esm, "module")).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED");
    }
  });

  it("a TypeScript consumer compiles with moduleResolution node16 and bundler", async () => {
    writeFileSync(
      join(dir, "consumer.ts"),
      `import { createSessionCache, type SessionCache, type SessionCacheOptions, SessionBackendUnavailableError } from "bangui-session-cache";
import { RedisSessionStore } from "bangui-session-cache/express-session";
import { createApp, startService, type StartServiceOptions } from "bangui-session-cache/server";
import session from "express-session";
import Redis from "ioredis";

const options: SessionCacheOptions = { url: "redis://127.0.0.1:6379", keyPrefix: "app:", nearCache: false, commandTimeoutMs: 500 };
export const cache: SessionCache = createSessionCache(options);
const store = new RedisSessionStore({ client: new Redis({ lazyConnect: true }), userOf: (s) => s.user as string | undefined });
export const middleware = session({ store, secret: "s", resave: false, saveUninitialized: false });
export const started: (o?: StartServiceOptions) => Promise<unknown> = startService;
export const app = createApp;
export const isUnavailable = (e: unknown): boolean => e instanceof SessionBackendUnavailableError;
export const listed: Promise<number> = store.destroyUser("ana");
`,
    );
    // skipLibCheck: ioredis 6's own typings import an untyped module; what our typings import is checked below.
    const compiles = (
      [
        ["node16", { module: "node16", moduleResolution: "node16" }],
        ["bundler", { module: "esnext", moduleResolution: "bundler" }],
      ] as const
    ).map(([name, compilerOptions]) => {
      writeFileSync(
        join(dir, `tsconfig.${name}.json`),
        JSON.stringify({
          compilerOptions: { ...compilerOptions, target: "es2022", strict: true, noEmit: true, esModuleInterop: true, skipLibCheck: true, types: ["node"] },
          files: ["consumer.ts"],
        }),
      );
      return sh(process.execPath, [TSC, "-p", `tsconfig.${name}.json`]).then(
        () => `${name}: ok`,
        (err: { stdout?: string }) => `${name}: ${err.stdout ?? String(err)}`,
      );
    });
    expect(await Promise.all(compiles)).toEqual(["node16: ok", "bundler: ok"]);
  });

  it("the typings of . and ./express-session need only ioredis, zod, pino and node (no service package)", () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/(?:from |import\()"([^"]+)"/g)) {
        const spec = m[1]!;
        if (spec.startsWith(".")) {
          const base = resolve(dirname(file), spec.replace(/\.js$/, ""));
          walk(existsSync(`${base}.d.ts`) ? `${base}.d.ts` : join(base, "index.d.ts"));
        } else {
          packages.add(spec.startsWith("node:") ? "node:*" : spec);
        }
      }
    };
    walk(join(pkgDir, "dist/src/index.d.ts"));
    walk(join(pkgDir, "dist/src/express-session/index.d.ts"));
    expect([...packages].sort()).toEqual(["ioredis", "node:*", "pino", "zod"]);
  });

  it("npx bangui-users adds and lists users", async () => {
    const env = { BANGUI_USERS_FILE: join(dir, "users.json") };
    const add = await runWithEnv("npx", ["--no-install", "bangui-users", "add", "alice"], env, "a-long-password-1\n");
    expect(add.stderr).toContain("user alice added");
    const list = await runWithEnv("npx", ["--no-install", "bangui-users", "list"], env);
    expect(list.stdout.trim().split("\n")).toContain("alice");
  });

  it("npx bangui-session-cache serves /healthz and stops on SIGTERM to its PID", async () => {
    const port = await freePort();
    const child = spawn("npx", ["--no-install", "bangui-session-cache"], {
      cwd: dir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, BANGUI_PORT: String(port), BANGUI_USERS_FILE: join(dir, "service-users.json"), BANGUI_LOG_LEVEL: "warn" },
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      let status = 0;
      const end = Date.now() + 120_000;
      while (status !== 200 && Date.now() < end) {
        status = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      // The group of the process this test spawned (npx and the service under it).
      process.kill(-child.pid!, "SIGTERM");
    }
    await exited;
    const after = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
    expect(after).toBe(0);
  });

  it("publint and attw find no problem in what ships", async () => {
    const publint = await sh(join(ROOT, "node_modules", ".bin", "publint"), [pkgDir, "--strict"]);
    expect(publint.stdout).toContain("All good");
    const attw = await sh(join(ROOT, "node_modules", ".bin", "attw"), [tarball, "--format", "table-flipped"]);
    expect(attw.stdout).toContain("No problems found");
  });
});

function runWithEnv(cmd: string, args: string[], env: Record<string, string>, input?: string) {
  const child = run(cmd, args, { cwd: dir, timeout: 120_000, env: { ...process.env, ...env } });
  child.child.stdin!.end(input ?? "");
  return child;
}
