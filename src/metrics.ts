import { Counter, register, type Gauge, type Histogram } from "prom-client";
import { createPromCacheMetrics } from "./cache/metrics";

/**
 * The service's metrics on prom-client's default registry (this module is imported by the service
 * only, never by the package's `.` entry). In cluster mode the primary aggregates the workers'
 * registries (see `cluster/primary.ts`). Labels never hold a token, a username or a password.
 * The cache layer's own metrics are registered here too, and passed to it (`registry` option).
 */
const cacheMetrics = createPromCacheMetrics(register) as unknown as {
  cacheLatency: Histogram<"backend" | "op">;
  cacheCorruptValues: Counter<"backend">;
  backendUp: Gauge;
  nearCacheHits: Counter;
  nearCacheMisses: Counter;
  nearCacheInvalidations: Counter;
  nearCacheBypassSeconds: Counter;
};

export const metrics = {
  registry: register,
  logins: new Counter({
    name: "bangui_logins_total",
    help: "Login attempts by outcome",
    labelNames: ["outcome"] as const, // success | invalid | throttled | bad_request | unavailable
  }),
  sessionChecks: new Counter({
    name: "bangui_session_checks_total",
    help: "Session checks by outcome",
    labelNames: ["outcome"] as const, // valid | invalid | unavailable
  }),
  ...cacheMetrics,
};

export type Metrics = typeof metrics;
