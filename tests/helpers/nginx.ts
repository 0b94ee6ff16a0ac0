/**
 * Real nginx for e2e tests, running the shipped docker/proxies/nginx.conf with `bangui:8080`, `app:8000`
 * and `listen 80` replaced by loopback addresses, inside a minimal main config whose pid, logs and temp
 * paths are all in a temp dir. Needs /usr/sbin/nginx (Debian package `nginx`; `.ci/run` installs it).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "./redis-process";
import { proxyTempDir, spawnProxy, type ProxyProcess } from "./proxy-process";

export const NGINX_BIN = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p)) ?? "nginx";
const SHIPPED = resolve(__dirname, "..", "..", "docker", "proxies", "nginx.conf");

/** Starts nginx in front of the service at `servicePort` and the app at `appPort`. */
export async function startNginx(servicePort: number, appPort: number): Promise<ProxyProcess> {
  const port = await freePort();
  const dir = proxyTempDir("nginx");
  // Workers run as an unprivileged user when nginx starts as root: let them into the temp dir.
  chmodSync(dir, 0o755);
  const server = readFileSync(SHIPPED, "utf8")
    .replaceAll("http://bangui:8080", `http://127.0.0.1:${servicePort}`)
    .replaceAll("http://app:8000", `http://127.0.0.1:${appPort}`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  const code = server.replace(/#.*$/gm, "");
  if (code.includes("bangui:8080") || code.includes("app:8000")) throw new Error("nginx.conf: an address was not replaced");
  writeFileSync(join(dir, "server.conf"), server);
  writeFileSync(
    join(dir, "nginx.conf"),
    [
      "worker_processes 1;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} info;`,
      "events { worker_connections 256; }",
      "http {",
      `  access_log ${join(dir, "access.log")};`,
      `  client_body_temp_path ${join(dir, "client_body")};`,
      `  proxy_temp_path ${join(dir, "proxy")};`,
      `  fastcgi_temp_path ${join(dir, "fastcgi")};`,
      `  uwsgi_temp_path ${join(dir, "uwsgi")};`,
      `  scgi_temp_path ${join(dir, "scgi")};`,
      `  include ${join(dir, "server.conf")};`,
      "}",
      "",
    ].join("\n"),
  );
  // -e: the error log before the config is read (else nginx tries /var/log/nginx/error.log first).
  return spawnProxy("nginx", NGINX_BIN, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log"), "-g", "daemon off;"], {
    port,
    dir,
    logFiles: [join(dir, "error.log")],
  });
}
