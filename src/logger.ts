import pino, { type Logger } from "pino";

export type { Logger };

/** Paths pino replaces with "[redacted]": cookies, authorization headers, passwords and tokens anywhere. */
export const REDACT_PATHS = [
  "req.headers.cookie",
  "req.headers.authorization",
  'res.headers["set-cookie"]',
  "password",
  "token",
  "*.password",
  "*.token",
  "body.password",
  "req.body.password",
];

/**
 * The root logger; `main.ts` makes it, everything else receives a child. A `destination` can be passed
 * (tests capture every line that way).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that drops everything (library default and tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
