import express from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SessionService } from "../auth/session-service";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { createRedirectPolicy } from "../auth/redirects";
import { errorHandler, notFound } from "./errors";
import { createLeanPath } from "./lean-path";
import { pagesRouter } from "./pages";
import { recordHeaders } from "./session-answer";
import { authRouter } from "./routes/auth";
import { opsRouter } from "./routes/ops";

/** What createApp needs; the worker builds it (cluster/worker.ts). */
export interface AppDeps {
  sessions: SessionService;
  config: Config;
  logger: Logger;
  /** True when the session backend answers (GET /readyz). */
  ready: () => Promise<boolean>;
  /**
   * Answer the verify endpoints and GET /api/auth/session in front of Express (lean-path.ts). Off only to
   * compare the two in tests. @default true
   */
  leanPath?: boolean;
  /** Aggregated metrics text; @default this process's prom-client default registry */
  metricsText?: () => Promise<{ contentType: string; body: string }>;
}

/** Paths hit on every request of a client or a probe: logged at debug only, to keep the hot path quiet. */
const QUIET_PATHS = new Set(["/api/auth/session", "/healthz", "/readyz", "/metrics"]);

function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/**
 * Content-Security-Policy of every answer (the pages' above all): this origin's scripts, styles, images
 * and API only; no inline code, no plugins, no framing, no `<base>`, forms post only here. No
 * `upgrade-insecure-requests`: it would break the pages of a plain-http deployment on a LAN host.
 */
export const PAGE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    objectSrc: ["'none'"],
  },
};

/**
 * The Express 5 app of the login service (no listen: cluster/worker.ts does that, tests use supertest).
 * Access logs carry method, path (no query string), status and timing: never headers, bodies, cookies.
 * The verify endpoints and GET /api/auth/session are answered on the lean path (lean-path.ts), in front
 * of Express: `app.handle`
 * is wrapped, so the same app object serves them under node:http, cluster workers and supertest alike.
 */
export function createApp(deps: AppDeps): express.Express {
  const { config } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);

  const redirects = createRedirectPolicy(config.allowedRedirectHosts);
  const pageHeaders = helmet({ contentSecurityPolicy: PAGE_CSP });
  if (deps.leanPath !== false) {
    const lean = createLeanPath({
      sessions: deps.sessions,
      redirects,
      publicUrl: config.publicUrl,
      logger: deps.logger,
      pageHeaders: recordHeaders(pageHeaders),
    });
    const expressHandle = (app as unknown as { handle: (req: IncomingMessage, res: ServerResponse, next?: unknown) => void }).handle;
    (app as unknown as { handle: typeof expressHandle }).handle = function handle(req, res, next) {
      if (!lean(req, res)) expressHandle.call(app, req, res, next);
    };
  }

  app.use(pageHeaders);
  const httpLogger = deps.logger.child({ component: "http" });
  const accessLog = pinoHttp({
    logger: httpLogger,
    quietReqLogger: true,
    serializers: {
      req: (req: IncomingMessage & { id?: unknown }) => ({ id: req.id, method: req.method, path: pathOf(req.url) }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (req, res, err) => {
      if (res.statusCode === 503) return "warn";
      if (err !== undefined || res.statusCode >= 500) return "error";
      // Express rewrites req.url inside mounted routers; originalUrl is the full path.
      return QUIET_PATHS.has(pathOf((req as { originalUrl?: string }).originalUrl ?? req.url)) ? "debug" : "info";
    },
  });
  // The quiet paths are access-logged at debug only: below debug, skip pino-http for them altogether (its
  // per-request child logger and serializers were ~15% of a session check's CPU). Their 5xx are still
  // logged by the error handler.
  app.use(
    httpLogger.isLevelEnabled("debug")
      ? accessLog
      : (req, res, next) => (QUIET_PATHS.has(pathOf(req.url)) ? next() : accessLog(req, res, next)),
  );

  app.use("/api/auth", authRouter(deps.sessions, config, redirects));
  app.use(pagesRouter({ sessions: deps.sessions, publicUrl: config.publicUrl }));
  app.use(opsRouter({ ready: deps.ready, ...(deps.metricsText ? { metricsText: deps.metricsText } : {}) }));
  app.use(notFound);
  app.use(errorHandler(deps.logger.child({ component: "http" })));
  return app;
}
