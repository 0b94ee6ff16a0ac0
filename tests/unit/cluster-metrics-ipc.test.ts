/**
 * The metrics IPC protocol of cluster/metrics-ipc.ts, both halves wired to each other in one process
 * through in-memory channels (no cluster needed): ids of concurrent requests never mix, a worker that
 * does not answer makes the collection fail after the timeout, and a worker that exits is not waited for.
 */
import { EventEmitter } from "node:events";
import type { Worker } from "node:cluster";
import { Counter, register } from "prom-client";
import {
  createPrimaryMetrics,
  createWorkerMetrics,
  METRICS_COLLECT,
  METRICS_RESPONSE,
  type PrimaryMetrics,
  type WorkerChannel,
} from "../../src/cluster/metrics-ipc";

/** A worker process seen from both sides: `channel` is its `process`, `worker` the primary's handle. */
class FakeWorker {
  readonly channel: WorkerChannel & EventEmitter;
  readonly worker: Worker;
  connected = true;
  /** When false, collect requests are swallowed (a stuck worker). */
  answers = true;
  constructor(id: number, primary: () => PrimaryMetrics) {
    const toWorker = new EventEmitter();
    const channel = Object.assign(toWorker, {
      send: (message: unknown) => setImmediate(() => primary().onMessage(this.worker, message)),
    }) as unknown as WorkerChannel & EventEmitter;
    this.channel = channel;
    this.worker = {
      id,
      isConnected: () => this.connected,
      send: (message: { type?: string }) => {
        if (message.type === METRICS_COLLECT && !this.answers) return true;
        setImmediate(() => toWorker.emit("message", message));
        return true;
      },
    } as unknown as Worker;
  }
}

function setup(n: number, timeoutMs = 2000) {
  let primary!: PrimaryMetrics;
  const fakes = Array.from({ length: n }, (_x, i) => new FakeWorker(i + 1, () => primary));
  primary = createPrimaryMetrics({ workers: () => fakes.filter((f) => f.connected).map((f) => f.worker), timeoutMs });
  const workers = fakes.map((f) => createWorkerMetrics({ channel: f.channel, timeoutMs }));
  return { primary, fakes, workers, close: () => workers.forEach((w) => w.close()) };
}

const counterName = "bangui_test_ipc_total";

beforeAll(() => {
  // One registry per process in reality; here the three fake workers share it, so sums are 3x.
  new Counter({ name: counterName, help: "test" }).inc(2);
});

afterAll(() => register.removeSingleMetric(counterName));

test("a worker's metrics request is answered with the sum over every worker", async () => {
  const { workers, close } = setup(3);
  const text = await workers[0]!.metricsText();
  expect(text.contentType).toMatch(/^text\/plain/);
  expect(text.body).toContain(`${counterName} 6`);
  close();
});

test("concurrent requests from several workers each get their own answer", async () => {
  const { fakes, workers, close } = setup(3);
  const received = fakes.map((f) => {
    const ids: number[] = [];
    f.channel.on("message", (m: { type?: string; id?: number }) => {
      if (m.type === METRICS_RESPONSE) ids.push(m.id!);
    });
    return ids;
  });
  const answers = await Promise.all(workers.flatMap((w) => Array.from({ length: 10 }, () => w.metricsText())));
  expect(answers).toHaveLength(30);
  for (const a of answers) expect(a.body).toContain(`${counterName} 6`);
  // Each worker got exactly one answer per request of its own, none of another worker's (let any stray
  // message arrive first: a misrouted answer resolves a request early, the right one comes after).
  await new Promise((r) => setTimeout(r, 50));
  for (const ids of received) expect([...ids].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  close();
});

test("a worker that never sends its metrics makes the request fail with an error after the timeout", async () => {
  const { fakes, workers, close } = setup(2, 200);
  fakes[1]!.answers = false;
  await expect(workers[0]!.metricsText()).rejects.toThrow(/did not send their metrics|did not answer/);
  close();
});

test("a worker that exits during a collection is dropped from it instead of waited for", async () => {
  const { primary, fakes, workers, close } = setup(2, 5000);
  fakes[1]!.answers = false;
  const pending = workers[0]!.metricsText();
  setTimeout(() => {
    fakes[1]!.connected = false;
    primary.onExit(fakes[1]!.worker);
  }, 50);
  const text = await pending;
  expect(text.body).toContain(`${counterName} 2`);
  close();
});

test("the worker side times out with an error when the primary never answers", async () => {
  const channel = Object.assign(new EventEmitter(), { send: () => true }) as unknown as WorkerChannel;
  const w = createWorkerMetrics({ channel, timeoutMs: 50 });
  await expect(w.metricsText()).rejects.toThrow(/did not answer the metrics request within 50 ms/);
  w.close();
});
