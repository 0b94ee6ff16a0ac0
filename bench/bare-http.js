"use strict";
/**
 * The CPU floor of a verify answer: a bare node:http handler (node:cluster with WORKERS > 1) answering
 * every request 200 with `Remote-User` and `Cache-Control: no-store`, no session work. PORT, WORKERS.
 */
const cluster = require("node:cluster");
const http = require("node:http");

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || 1);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    process.exit(0);
  });
} else {
  http
    .createServer((req, res) => {
      if (req.url === "/healthz") {
        res.end("{}");
        return;
      }
      res.statusCode = 200;
      res.setHeader("Cache-Control", "no-store");
      res.setHeader("Remote-User", "bench");
      res.setHeader("Content-Length", 0);
      res.end();
    })
    .listen(port, "127.0.0.1");
}
