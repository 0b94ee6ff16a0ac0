import { Counter, Gauge, Histogram, register } from "prom-client";

/**
 * Process-wide metrics on prom-client's default registry. In cluster mode the primary aggregates the
 * workers' registries (see `cluster/primary.ts`). Labels never hold a token, a username or a password.
 */
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
  cacheLatency: new Histogram({
    name: "bangui_cache_operation_seconds",
    help: "Session cache operation latency",
    labelNames: ["backend", "op"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  }),
  cacheCorruptValues: new Counter({
    name: "bangui_cache_corrupt_values_total",
    help: "Values in the session store that did not parse as a session (removed)",
    labelNames: ["backend"] as const,
  }),
  backendUp: new Gauge({
    name: "bangui_session_backend_up",
    help: "1 when the session backend answers, 0 otherwise",
    aggregator: "min",
  }),
  nearCacheHits: new Counter({ name: "bangui_near_cache_hits_total", help: "Near-cache hits" }),
  nearCacheMisses: new Counter({ name: "bangui_near_cache_misses_total", help: "Near-cache misses (read through)" }),
  nearCacheInvalidations: new Counter({
    name: "bangui_near_cache_invalidations_total",
    help: "Invalidation messages received from Redis",
  }),
  nearCacheBypassSeconds: new Counter({
    name: "bangui_near_cache_bypass_seconds_total",
    help: "Time the near-cache spent bypassed (tracking not established)",
  }),
};

export type Metrics = typeof metrics;
