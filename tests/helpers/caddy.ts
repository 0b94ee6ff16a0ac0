/**
 * Real Caddy for e2e tests, running the shipped docker/proxies/Caddyfile with `bangui:8080`, `app:8000`
 * and `:80` replaced by loopback addresses; its HOME/XDG dirs (autosave, storage) in a temp dir, admin
 * API off. Needs /usr/bin/caddy (Debian package `caddy`; `.ci/run` installs it).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "./redis-process";
import { proxyTempDir, spawnProxy, type ProxyProcess } from "./proxy-process";

export const CADDY_BIN = ["/usr/bin/caddy", "/usr/local/bin/caddy"].find((p) => existsSync(p)) ?? "caddy";
const SHIPPED = resolve(__dirname, "..", "..", "docker", "proxies", "Caddyfile");

/** Starts Caddy in front of the service at `servicePort` and the app at `appPort`. */
export async function startCaddy(servicePort: number, appPort: number): Promise<ProxyProcess> {
  const port = await freePort();
  const dir = proxyTempDir("caddy");
  const config = readFileSync(SHIPPED, "utf8")
    .replaceAll("bangui:8080", `127.0.0.1:${servicePort}`)
    .replaceAll("app:8000", `127.0.0.1:${appPort}`)
    .replace(/^:80 \{/m, `http://127.0.0.1:${port} {`);
  const code = config.replace(/#.*$/gm, "");
  if (code.includes("bangui:8080") || code.includes("app:8000") || /^:80 /m.test(code)) throw new Error("Caddyfile: an address was not replaced");
  const file = join(dir, "Caddyfile");
  writeFileSync(file, config);
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  return spawnProxy("caddy", CADDY_BIN, ["run", "--config", file, "--adapter", "caddyfile"], { port, dir, env });
}
