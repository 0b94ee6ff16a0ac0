import type { Config } from "jest";

/** One test command for everything: unit, contract, integration and e2e suites. */
const config: Config = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  // A guard against hangs only: the suite may run on a loaded machine, and no test may rely on a wall-clock bound.
  testTimeout: 300_000,
  // Redis servers and service processes are real: two cores, so keep concurrency modest.
  maxWorkers: 2,
  verbose: false,
};

export default config;
