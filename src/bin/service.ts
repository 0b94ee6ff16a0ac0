#!/usr/bin/env node
/**
 * `npx bangui-session-cache`: the service (src/main.ts), after checking that the packages only the
 * service needs are installed (they are optional peer dependencies: a cache-only user never needs them).
 */
const SERVICE_PACKAGES = ["express", "helmet", "pino-http", "cookie", "rate-limiter-flexible", "prom-client", "ioredis"];

const missing = SERVICE_PACKAGES.filter((name) => {
  try {
    require.resolve(name);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  process.stderr.write(
    `bangui-session-cache: the service needs these packages, which are not installed: ${missing.join(", ")}\n` +
      `install them with: npm install ${missing.join(" ")}\n`,
  );
  process.exit(1);
}
require("../main");
