import express from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SessionService } from "../auth/session-service";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { errorHandler, notFound } from "./errors";
import { authRouter } from "./routes/auth";
import { opsRouter } from "./routes/ops";

/** What createApp needs; the worker builds it (cluster/worker.ts). */
export interface AppDeps {
  sessions: SessionService;
  config: Config;
  logger: Logger;
  /** True when the session backend answers (GET /readyz). */
  ready: () => Promise<boolean>;
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
 * The Express 5 app of the login service (no listen: cluster/worker.ts does that, tests use supertest).
 * Access logs carry method, path (no query string), status and timing: never headers, bodies, cookies.
 */
export function createApp(deps: AppDeps): express.Express {
  const { config } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);

  app.use(helmet());
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

  app.use("/api/auth", authRouter(deps.sessions, config));
  app.use(opsRouter({ ready: deps.ready, ...(deps.metricsText ? { metricsText: deps.metricsText } : {}) }));
  app.use(notFound);
  app.use(errorHandler(deps.logger.child({ component: "http" })));
  return app;
}
