"use strict";
/** The HTTP ceiling: a bare Express 5 route answering the same JSON with no session work. PORT, WORKERS. */
const cluster = require("node:cluster");
const express = require("express");

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 1);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    process.exit(0);
  });
} else {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.get("/healthz", (_req, res) => res.json({ ok: true }));
  app.post("/api/auth/login", (_req, res) => res.json({ username: "bench" }));
  const createdAt = new Date().toISOString();
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  app.get("/api/auth/session", (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    res.json({ username: "bench", createdAt, expiresAt });
  });
  app.listen(port, "127.0.0.1");
}
