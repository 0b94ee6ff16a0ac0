import type { ChildProcess } from "node:child_process";
import { IpcSessionCache } from "../../src/cache/ipc";
import { forkFixture, killFixture } from "../helpers/ipc-fixtures";
import { describeSessionCacheContract } from "./session-cache.contract";

// The cache under test runs here; the sessions live in a forked process speaking the primary's protocol
// over a real IPC channel (tests/fixtures/ipc-primary.ts).
let primary: ChildProcess;
beforeAll(async () => {
  primary = await forkFixture("ipc-primary");
});
afterAll(async () => {
  await killFixture(primary);
});

describeSessionCacheContract("ipc", () => new IpcSessionCache({ channel: primary, commandTimeoutMs: 5000 }), { stores: true });
