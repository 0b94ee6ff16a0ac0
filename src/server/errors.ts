import type { ErrorRequestHandler, RequestHandler } from "express";
import { InvalidCredentialsError, LoginThrottledError } from "../auth/errors";
import { SessionBackendUnavailableError } from "../errors";
import type { Logger } from "../logger";

/** An error with its HTTP answer already decided (404, 405, 415, 401 without a session...). */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** The answer of one error: status, `{error, message}` body, extra headers. */
export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

/** Errors from body-parser carry a `type` (and a 4xx `status`). */
interface BodyParserError {
  type?: unknown;
  status?: unknown;
  expose?: unknown;
}

/** Maps any error to its answer; the only place that decides error statuses. */
export function answerFor(err: unknown): ErrorAnswer {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message, headers: { ...err.headers } };
  if (err instanceof InvalidCredentialsError) return { status: 401, code: err.code, message: "invalid username or password" };
  if (err instanceof LoginThrottledError) {
    return {
      status: 429,
      code: err.code,
      message: "too many failed login attempts, try again later",
      headers: { "Retry-After": String(err.retryAfterSeconds) },
    };
  }
  if (err instanceof SessionBackendUnavailableError) {
    return { status: 503, code: err.code, message: "the session backend is unavailable, try again shortly" };
  }
  const bp = (typeof err === "object" && err !== null ? err : {}) as BodyParserError;
  switch (bp.type) {
    case "entity.too.large":
      return { status: 413, code: "payload_too_large", message: "the request body is too large" };
    case "entity.parse.failed":
      return { status: 400, code: "invalid_request", message: "the request body is not valid JSON" };
    case "encoding.unsupported":
    case "charset.unsupported":
      return { status: 415, code: "unsupported_media_type", message: "the request body encoding is not supported" };
    default:
      break;
  }
  if (typeof bp.status === "number" && bp.status >= 400 && bp.status < 500) {
    return { status: bp.status, code: "invalid_request", message: "the request could not be read" };
  }
  return { status: 500, code: "internal_error", message: "an unexpected error occurred" };
}

/**
 * The answer to a request Node's HTTP parser refused before Express saw it (`clientError`, by its error
 * code): always a 4xx, since the bytes the client sent are at fault.
 */
export function parserErrorAnswer(code: string | undefined): ErrorAnswer {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "headers_too_large", message: "the request headers are too large" };
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { status: 413, code: "payload_too_large", message: "the request chunk extensions are too large" };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: "request_timeout", message: "the request was not received in time" };
    default:
      return { status: 400, code: "invalid_request", message: "the request is not valid HTTP" };
  }
}

/** The final error middleware: `{error, message}`, never a stack; unexpected errors are logged. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const answer = answerFor(err);
    if (answer.status >= 500 && answer.status !== 503) {
      logger.error({ err, method: req.method, path: req.path }, "unexpected error");
    } else if (answer.status === 503) {
      logger.warn({ err: { name: (err as Error).name, message: (err as Error).message }, path: req.path }, "session backend unavailable");
    }
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
    res.status(answer.status).json({ error: answer.code, message: answer.message });
  };
}

/** Unknown route: 404 JSON. */
export const notFound: RequestHandler = (_req, _res, next) => {
  next(new HttpError(404, "not_found", "no such route"));
};

/** Known route, unknown method: 405 JSON with `Allow`. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(", ");
  return (_req, _res, next) => {
    next(new HttpError(405, "method_not_allowed", `allowed methods: ${allow}`, { Allow: allow }));
  };
}
