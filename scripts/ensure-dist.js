#!/usr/bin/env node
/**
 * `prestart` / `preusers`: compile only when the built file the command runs is missing (a fresh clone
 * installed with --ignore-scripts). `npm install` (prepare) and `npm test` (pretest) build; `npm start`
 * runs what is built, so a built tree listens in about a second.
 * Usage: node scripts/ensure-dist.js <built file>
 */
"use strict";
const { existsSync } = require("node:fs");
const { spawnSync } = require("node:child_process");

const file = process.argv[2];
if (file === undefined) {
  console.error("usage: node scripts/ensure-dist.js <built file>");
  process.exit(2);
}
if (!existsSync(file)) {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const run = spawnSync(npm, ["run", "--silent", "build"], { stdio: "inherit" });
  process.exit(run.status ?? 1);
}
