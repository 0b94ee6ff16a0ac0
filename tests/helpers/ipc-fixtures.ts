/**
 * Forks the ipc backend's test fixtures (TypeScript, through ts-node's transpile-only hook) and waits
 * until they are ready. Every child is SIGKILLed at the end of the jest worker as a last resort.
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Forks `tests/fixtures/<name>.ts` and resolves once it sent `{type: "fixture-ready"}`. */
export function forkFixture(name: "ipc-primary" | "ipc-worker", env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = fork(join(__dirname, "..", "fixtures", `${name}.ts`), [], {
    execArgv: ["-r", "ts-node/register/transpile-only"],
    env: { ...process.env, ...env, TS_NODE_PROJECT: join(__dirname, "..", "..", "tsconfig.json") },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} fixture did not start within 60 s`)), 60_000);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${name} fixture exited (${code}) before it was ready`)));
    child.on("message", function ready(message: unknown) {
      if ((message as { type?: string })?.type !== "fixture-ready") return;
      clearTimeout(timer);
      child.off("message", ready);
      resolve(child);
    });
  });
}

/** SIGKILLs a fixture and waits for its exit. */
export async function killFixture(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}
