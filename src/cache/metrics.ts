import type * as PromClient from "prom-client";

/** A counter as the cache layer uses it (a prom-client `Counter` fits). */
export interface CacheCounter<L extends string = never> {
  inc(labels?: Partial<Record<L, string>> | number, value?: number): void;
}

/**
 * The cache layer's metrics, injected into each backend (`metrics` option). The default is
 * `noopCacheMetrics`: a library user who passes nothing gets no global registration, no timer, no cost.
 * The service passes `createPromCacheMetrics(registry)`. Labels never hold a token or a username.
 */
export interface CacheMetrics {
  cacheLatency: { startTimer(labels: { backend: string; op: string }): () => unknown };
  cacheCorruptValues: CacheCounter<"backend">;
  backendUp: { set(value: number): void };
  nearCacheHits: CacheCounter;
  nearCacheMisses: CacheCounter;
  nearCacheInvalidations: CacheCounter;
  nearCacheBypassSeconds: CacheCounter;
}

const noopCounter: CacheCounter<never> = { inc: () => undefined };
const noopEnd = () => undefined;

/** Counts nothing: the default of every backend. */
export const noopCacheMetrics: CacheMetrics = Object.freeze({
  cacheLatency: { startTimer: () => noopEnd },
  cacheCorruptValues: noopCounter,
  backendUp: { set: () => undefined },
  nearCacheHits: noopCounter,
  nearCacheMisses: noopCounter,
  nearCacheInvalidations: noopCounter,
  nearCacheBypassSeconds: noopCounter,
});

/**
 * What the cache layer needs of a prom-client `Registry` (a structural type, so that the package's
 * typings never require prom-client to be installed).
 */
export interface MetricsRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
}

const built = new WeakMap<MetricsRegistry, CacheMetrics>();

/**
 * Registers the cache layer's metrics on `registry` (once per registry: a second call, or a metric of
 * the same name already there, reuses what is registered). prom-client is loaded here, on first use,
 * so that importing the package never needs it nor registers anything.
 * @example createSessionCache({ url, registry: new Registry() })
 */
export function createPromCacheMetrics(registry: MetricsRegistry): CacheMetrics {
  const cached = built.get(registry);
  if (cached !== undefined) return cached;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const prom = require("prom-client") as typeof PromClient;
  const registers = [registry as unknown as PromClient.Registry];
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const counter = (name: string, help: string) =>
    reuse(name, () => new prom.Counter({ name, help, registers }));
  const metrics: CacheMetrics = {
    cacheLatency: reuse("bangui_cache_operation_seconds", () =>
      new prom.Histogram({
        name: "bangui_cache_operation_seconds",
        help: "Session cache operation latency",
        labelNames: ["backend", "op"] as const,
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers,
      }),
    ),
    cacheCorruptValues: reuse("bangui_cache_corrupt_values_total", () =>
      new prom.Counter({
        name: "bangui_cache_corrupt_values_total",
        help: "Values in the session store that did not parse as a session (removed)",
        labelNames: ["backend"] as const,
        registers,
      }),
    ),
    backendUp: reuse("bangui_session_backend_up", () =>
      new prom.Gauge({
        name: "bangui_session_backend_up",
        help: "1 when the session backend answers, 0 otherwise",
        aggregator: "min",
        registers,
      }),
    ),
    nearCacheHits: counter("bangui_near_cache_hits_total", "Near-cache hits"),
    nearCacheMisses: counter("bangui_near_cache_misses_total", "Near-cache misses (read through)"),
    nearCacheInvalidations: counter("bangui_near_cache_invalidations_total", "Invalidation messages received from Redis"),
    nearCacheBypassSeconds: counter(
      "bangui_near_cache_bypass_seconds_total",
      "Time the near-cache spent bypassed (tracking not established)",
    ),
  };
  built.set(registry, metrics);
  return metrics;
}
