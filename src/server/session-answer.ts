/**
 * GET /api/auth/session on the lean path: the hottest route of the service answered without Express, with
 * exactly the headers the Express route sends (helmet's, recorded once at start, plus Cache-Control,
 * Content-Type and Content-Length); `tests/server/lean-session.test.ts` compares the two.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SessionService } from "../auth/session-service";
import type { Logger } from "../logger";
import { answerFor } from "./errors";
import { checkSession } from "./session-check";

/** A connect-style middleware that only sets headers (helmet). */
type HeaderMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * The headers a header-only middleware sets, recorded once by running it against a stand-in response.
 * @throws Error when the middleware does anything else (then the lean path must not pretend to be it)
 */
export function recordHeaders(middleware: HeaderMiddleware): ReadonlyArray<readonly [string, string]> {
  const headers = new Map<string, string>();
  let nextCalled = false;
  const res = {
    setHeader(name: string, value: unknown) {
      headers.set(name, String(value));
      return res;
    },
    removeHeader(name: string) {
      headers.delete(name);
    },
  };
  middleware({ headers: {}, method: "GET", url: "/" } as IncomingMessage, res as unknown as ServerResponse, (err) => {
    if (err !== undefined) throw err as Error;
    nextCalled = true;
  });
  if (!nextCalled) throw new Error("the header middleware did not call next() at once");
  return [...headers.entries()];
}

/** What the lean session answer needs. */
export interface SessionAnswerDeps {
  sessions: SessionService;
  logger: Logger;
  /** helmet's headers (recordHeaders). */
  pageHeaders: ReadonlyArray<readonly [string, string]>;
}

function send(res: ServerResponse, deps: SessionAnswerDeps, status: number, body: string): void {
  for (const [name, value] of deps.pageHeaders) res.setHeader(name, value);
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.statusCode = status;
  res.end(body); // Node drops the body of a HEAD by itself
}

/** Answers GET or HEAD /api/auth/session. Never rejects: every failure is answered. */
export async function answerSession(deps: SessionAnswerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const found = await checkSession(deps.sessions, req);
    if (found === null) {
      send(res, deps, 401, JSON.stringify({ error: "unauthenticated", message: "no valid session" }));
      return;
    }
    const { session } = found;
    send(
      res,
      deps,
      200,
      JSON.stringify({
        username: session.username,
        createdAt: new Date(session.createdAt).toISOString(),
        expiresAt: new Date(session.expiresAt).toISOString(),
      }),
    );
  } catch (err) {
    const answer = answerFor(err);
    const path = req.url?.split("?")[0];
    if (answer.status === 503) {
      deps.logger.warn({ err: { name: (err as Error).name, message: (err as Error).message }, path }, "session backend unavailable");
    } else {
      deps.logger.error({ err, method: req.method, path }, "unexpected error");
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
    send(res, deps, answer.status, JSON.stringify({ error: answer.code, message: answer.message }));
  }
}
