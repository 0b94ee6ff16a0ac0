/**
 * The browser pages: `/login`, `/account`, and `/` sending the browser to one of them. They are static
 * files under `public/` (read once at start) plus one small script each that talks to the JSON API; no
 * inline script or style, so the CSP (app.ts `PAGE_CSP`) allows only this origin's files.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import express, { type Router } from "express";
import type { SessionService } from "../auth/session-service";
import { loginUrl } from "./verify";
import { methodNotAllowed, notFound } from "./errors";
import { checkSession } from "./session-check";

/** `public/` of the package: next to `src/` when run from source (ts-jest), next to `dist/` when built. */
export function publicDir(): string {
  const candidates = [resolve(__dirname, "..", "..", "public"), resolve(__dirname, "..", "..", "..", "public")];
  const found = candidates.find((dir) => existsSync(join(dir, "login.html")));
  if (found === undefined) throw new Error(`the pages' files are missing: looked in ${candidates.join(", ")}`);
  return found;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
};

interface StaticFile {
  body: Buffer;
  type: string;
}

function load(dir: string, name: string): StaticFile {
  const ext = name.slice(name.lastIndexOf(".") + 1);
  return { body: readFileSync(join(dir, name)), type: TYPES[ext] ?? "application/octet-stream" };
}

/** Options of pagesRouter. */
export interface PagesOptions {
  sessions: SessionService;
  /** `BANGUI_PUBLIC_URL` (login links). */
  publicUrl: string | undefined;
  /** Where the files are. @default publicDir() */
  dir?: string;
}

/** GET /, /login, /account and /_bangui/<file> (a prefix unlikely to collide with a protected app behind the same host). */
export function pagesRouter(options: PagesOptions): Router {
  const dir = options.dir ?? publicDir();
  const router = express.Router({ strict: false, caseSensitive: true });
  const login = load(dir, "login.html");
  const account = load(dir, "account.html");
  const assets = new Map<string, StaticFile>();
  for (const name of ["style.css", "login.js", "account.js"]) assets.set(name, load(join(dir, "assets"), name));

  const send = (res: express.Response, file: StaticFile, status = 200) => {
    res.status(status).setHeader("Content-Type", file.type);
    res.setHeader("Cache-Control", "no-store");
    res.end(file.body);
  };

  // Every other method: 405 with Allow (else Express would answer OPTIONS itself with a 200).
  const getOnly = methodNotAllowed(["GET", "HEAD"]);
  router.get("/", async (req, res) => {
    const found = await checkSession(options.sessions, req).catch(() => null);
    res.setHeader("Cache-Control", "no-store");
    res.redirect(302, found === null ? loginUrl(undefined, undefined) : "/account");
  });
  router.all("/", getOnly);
  router.get("/login", (_req, res) => send(res, login));
  router.all("/login", getOnly);
  router.get("/account", async (req, res) => {
    let found;
    try {
      found = await checkSession(options.sessions, req);
    } catch {
      // The page's script asks the API and shows that the service is unavailable.
      send(res, account, 503);
      return;
    }
    if (found === null) {
      res.setHeader("Cache-Control", "no-store");
      res.redirect(302, loginUrl(undefined, "/account"));
      return;
    }
    send(res, account);
  });
  router.all("/account", getOnly);
  router.get("/_bangui/:name", (req, res, next) => {
    const file = assets.get(String(req.params.name));
    if (file === undefined) {
      notFound(req, res, next);
      return;
    }
    send(res, file);
  });
  router.all("/_bangui/:name", getOnly);
  return router;
}
