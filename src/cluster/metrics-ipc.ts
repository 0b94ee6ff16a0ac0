/**
 * `GET /metrics` in cluster mode: the worker that receives the request asks the primary over IPC; the
 * primary collects every listening worker's registry as JSON, aggregates them with prom-client's
 * `AggregatorRegistry.aggregate` and answers the asking worker.
 *
 * Not `AggregatorRegistry.clusterMetrics()`: it asks every connected worker, including one still
 * booting that has no listener yet (the message is lost and the request waits 5 s, a fixed timeout),
 * and a worker that dies mid-collection also costs the full 5 s. Here only workers that listen are
 * asked, a dead worker is dropped from the collection, and the timeout is ours.
 *
 * Messages (all carry an `id` unique within its sender, so concurrent requests never mix):
 *   worker -> primary  {type: "bangui:metrics-request", id}
 *   primary -> worker  {type: "bangui:metrics-response", id, contentType, body} | {..., id, error}
 *   primary -> worker  {type: "bangui:metrics-collect", id}
 *   worker -> primary  {type: "bangui:metrics-collected", id, metrics} | {..., id, error}
 */
import type { Worker } from "node:cluster";
import { AggregatorRegistry, register } from "prom-client";

export const METRICS_REQUEST = "bangui:metrics-request";
export const METRICS_RESPONSE = "bangui:metrics-response";
export const METRICS_COLLECT = "bangui:metrics-collect";
export const METRICS_COLLECTED = "bangui:metrics-collected";

/** The answer `GET /metrics` sends. */
export interface MetricsText {
  contentType: string;
  body: string;
}

interface Message {
  type?: unknown;
  id?: unknown;
  [key: string]: unknown;
}

function isMessage(value: unknown, type: string): value is Message & { id: number } {
  return typeof value === "object" && value !== null && (value as Message).type === type && typeof (value as Message).id === "number";
}

// ---------------------------------------------------------------- worker side

/** The IPC channel of a worker (`process` in a cluster worker; a test may pass its own). */
export interface WorkerChannel {
  send(message: unknown): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
  off(event: "message", listener: (message: unknown) => void): unknown;
}

/** Options of `createWorkerMetrics`. */
export interface WorkerMetricsOptions {
  /** How long a `/metrics` request waits for the primary. @default 5000 */
  timeoutMs?: number;
  /** @default process (the cluster IPC channel) */
  channel?: WorkerChannel;
}

/** The worker's half: `metricsText()` for createApp, and the answer to the primary's collect requests. */
export interface WorkerMetrics {
  metricsText(): Promise<MetricsText>;
  /** Stops answering (pending requests fail). */
  close(): void;
}

/** Installs the worker side on the IPC channel. */
export function createWorkerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const channel = options.channel ?? (process as unknown as WorkerChannel);
  const timeoutMs = options.timeoutMs ?? 5000;
  const pending = new Map<number, { resolve: (m: MetricsText) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;

  const onMessage = (message: unknown) => {
    if (isMessage(message, METRICS_COLLECT)) {
      const id = message.id;
      register.getMetricsAsJSON().then(
        (metrics) => channel.send({ type: METRICS_COLLECTED, id, metrics }),
        (err: unknown) => channel.send({ type: METRICS_COLLECTED, id, error: String((err as Error)?.message ?? err) }),
      );
      return;
    }
    if (isMessage(message, METRICS_RESPONSE)) {
      const entry = pending.get(message.id);
      if (!entry) return; // timed out already
      pending.delete(message.id);
      clearTimeout(entry.timer);
      if (typeof message.error === "string") entry.reject(new Error(`metrics aggregation failed: ${message.error}`));
      else entry.resolve({ contentType: String(message.contentType), body: String(message.body) });
    }
  };
  channel.on("message", onMessage);

  return {
    metricsText() {
      return new Promise<MetricsText>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the primary did not answer the metrics request within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        try {
          channel.send({ type: METRICS_REQUEST, id });
        } catch (err) {
          pending.delete(id);
          clearTimeout(timer);
          reject(new Error("the primary cannot be reached for metrics", { cause: err }));
        }
      });
    },
    close() {
      channel.off("message", onMessage);
      for (const [id, entry] of pending) {
        clearTimeout(entry.timer);
        entry.reject(new Error("worker metrics closed"));
        pending.delete(id);
      }
    },
  };
}

// ---------------------------------------------------------------- primary side

/** Options of `createPrimaryMetrics`. */
export interface PrimaryMetricsOptions {
  /** The workers to ask (those listening); called at each collection. */
  workers: () => Iterable<Worker>;
  /** How long a collection waits for the workers. @default 3000 */
  timeoutMs?: number;
  /** The primary's own metrics, merged in (the ipc backend's invalidation counters). @default none */
  extra?: () => Promise<object[]>;
}

/** The primary's half. */
export interface PrimaryMetrics {
  /** Feed every worker message here (cluster "message" event). */
  onMessage(worker: Worker, message: unknown): void;
  /** A worker exited: collections stop waiting for it. */
  onExit(worker: Worker): void;
  /** Aggregated metrics of every listening worker. */
  collect(): Promise<MetricsText>;
}

interface Collection {
  waiting: Set<number>;
  /** One array of metric objects per worker (`getMetricsAsJSON`). */
  responses: object[][];
  finish: (err?: Error) => void;
}

/** Answers workers' metrics requests with the aggregate of all listening workers. */
export function createPrimaryMetrics(options: PrimaryMetricsOptions): PrimaryMetrics {
  const timeoutMs = options.timeoutMs ?? 3000;
  const collections = new Map<number, Collection>();
  let nextId = 1;

  const settleIfDone = (id: number) => {
    const c = collections.get(id);
    if (c && c.waiting.size === 0) c.finish();
  };

  const collect = (): Promise<MetricsText> =>
    new Promise<MetricsText>((resolve, reject) => {
      const id = nextId++;
      const collection: Collection = {
        waiting: new Set(),
        responses: [],
        finish: (err) => {
          if (!collections.has(id)) return;
          collections.delete(id);
          clearTimeout(timer);
          if (err) return reject(err);
          Promise.resolve(options.extra?.())
            .then((own) => {
              const registry = AggregatorRegistry.aggregate(own !== undefined ? [...collection.responses, own] : collection.responses);
              return registry.metrics().then((body) => resolve({ contentType: registry.contentType, body }));
            })
            .catch(reject);
        },
      };
      const timer = setTimeout(
        () => collection.finish(new Error(`${collection.waiting.size} worker(s) did not send their metrics within ${timeoutMs} ms`)),
        timeoutMs,
      );
      collections.set(id, collection);
      for (const worker of options.workers()) {
        if (!worker.isConnected()) continue;
        try {
          worker.send({ type: METRICS_COLLECT, id });
          collection.waiting.add(worker.id);
        } catch {
          // disconnected between the check and the send: its metrics are gone with it
        }
      }
      settleIfDone(id);
    });

  return {
    collect,
    onMessage(worker, message) {
      if (isMessage(message, METRICS_COLLECTED)) {
        const c = collections.get(message.id);
        if (!c || !c.waiting.delete(worker.id)) return;
        if (typeof message.error === "string") return c.finish(new Error(`worker ${worker.id}: ${message.error}`));
        if (Array.isArray(message.metrics)) c.responses.push(message.metrics as object[]);
        settleIfDone(message.id);
        return;
      }
      if (isMessage(message, METRICS_REQUEST)) {
        const id = message.id;
        const reply = (answer: Record<string, unknown>) => {
          if (!worker.isConnected()) return;
          try {
            worker.send({ type: METRICS_RESPONSE, id, ...answer });
          } catch {
            // the asking worker is gone
          }
        };
        collect().then(
          (text) => reply({ contentType: text.contentType, body: text.body }),
          (err: Error) => reply({ error: err.message }),
        );
      }
    },
    onExit(worker) {
      for (const [id, c] of collections) if (c.waiting.delete(worker.id)) settleIfDone(id);
    },
  };
}
