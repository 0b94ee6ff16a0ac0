/**
 * Debian's chromium driven by playwright-core (no browser download): `executablePath` from `which
 * chromium`, headless, sandbox off (CI containers run as root), no background traffic. Playwright gives
 * each launch a new temporary profile and removes it on close.
 */
import { spawnSync } from "node:child_process";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Path of the chromium binary; throws saying how to install it. */
export function chromiumPath(): string {
  const found = spawnSync("which", ["chromium"], { encoding: "utf8" });
  const path = found.status === 0 ? found.stdout.trim() : "";
  if (path === "") throw new Error("the browser tests need Debian's chromium: apt-get install chromium (.ci/run does it)");
  return path;
}

/** Launches chromium; close it with `browser.close()` (which ends the process and removes the profile). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}
