import express, { type Router } from "express";
import { register } from "prom-client";
import { methodNotAllowed } from "../errors";

/** Dependencies of the operational routes. */
export interface OpsDeps {
  /** True when the session backend answers. */
  ready: () => Promise<boolean>;
  /** Aggregated metrics (the cluster primary's); @default prom-client's default registry of this process */
  metricsText?: () => Promise<{ contentType: string; body: string }>;
}

/** GET /healthz, /readyz and /metrics. */
export function opsRouter(deps: OpsDeps): Router {
  const router = express.Router({ caseSensitive: true });
  const metricsText =
    deps.metricsText ?? (async () => ({ contentType: register.contentType, body: await register.metrics() }));

  router
    .route("/healthz")
    .get((_req, res) => {
      res.status(200).json({ status: "ok" });
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/readyz")
    .get(async (_req, res) => {
      const ready = await deps.ready().catch(() => false);
      res.setHeader("Cache-Control", "no-store");
      if (ready) res.status(200).json({ status: "ready" });
      else res.status(503).json({ error: "not_ready", message: "the session backend does not answer" });
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/metrics")
    .get(async (_req, res) => {
      const { contentType, body } = await metricsText();
      res.setHeader("Content-Type", contentType);
      res.setHeader("Cache-Control", "no-store");
      res.status(200).send(body);
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  return router;
}
