"use strict";
/**
 * The peer: the same login/session endpoints written the way a careful user writes them with
 * express-session + connect-redis (resave:false, saveUninitialized:false, same cookie name).
 * PEER_CLIENT=ioredis: connect-redis 8 on ioredis; PEER_CLIENT=node-redis: connect-redis 9 on `redis`.
 * PORT, WORKERS, REDIS_URL from the environment (set by bench/run.js).
 */
const cluster = require("node:cluster");
const express = require("express");
const session = require("express-session");

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 1);
const kind = process.env.PEER_CLIENT || "ioredis";

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    process.exit(0);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

async function makeStore() {
  if (kind === "node-redis") {
    const { createClient } = require("redis");
    const { RedisStore } = require("connect-redis-9");
    const client = createClient({ url: process.env.REDIS_URL });
    client.on("error", () => {});
    await client.connect();
    return new RedisStore({ client, prefix: "peer9:" });
  }
  const { Redis } = require("ioredis");
  const { RedisStore } = require("connect-redis");
  const client = new Redis(process.env.REDIS_URL);
  client.on("error", () => {});
  return new RedisStore({ client, prefix: "peer8:" });
}

async function main() {
  const store = await makeStore();
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(
    session({
      store,
      name: "bangui_session",
      secret: "bench-peer-secret-not-a-real-one",
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: "strict", path: "/", maxAge: 3_600_000 },
    }),
  );
  app.get("/healthz", (_req, res) => res.json({ ok: true }));
  app.post("/api/auth/login", express.json(), (req, res, next) => {
    const { username } = req.body || {};
    // The password check is not what is measured here (one login per run).
    req.session.regenerate((err) => {
      if (err) return next(err);
      const now = Date.now();
      req.session.user = { username, createdAt: now, expiresAt: now + 3_600_000 };
      res.json({ username, expiresAt: new Date(now + 3_600_000).toISOString() });
    });
  });
  app.get("/api/auth/session", (req, res) => {
    const u = req.session.user;
    if (!u) return res.status(401).json({ error: "unauthenticated", message: "no valid session" });
    res.setHeader("Cache-Control", "no-store");
    res.json({ username: u.username, createdAt: new Date(u.createdAt).toISOString(), expiresAt: new Date(u.expiresAt).toISOString() });
  });
  app.listen(port, "127.0.0.1");
}
