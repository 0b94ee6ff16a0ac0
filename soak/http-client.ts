/**
 * One HTTP request over loopback, recorded as the client saw it: a fresh connection per request (so
 * node:cluster spreads them over the workers and a killed worker costs only what it held), a hard
 * client-side timeout, and the socket error code when there is no answer. Never throws.
 */
import { request, type IncomingHttpHeaders } from "node:http";

export interface Answer {
  /** 0 when there was no answer. */
  status: number;
  headers: IncomingHttpHeaders;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** For status 0: "timeout" or the socket error code. */
  error?: string;
}

export interface SendOptions {
  token?: string;
  body?: unknown;
  timeoutMs: number;
}

export function send(baseUrl: string, method: string, path: string, o: SendOptions): Promise<Answer> {
  const url = new URL(path, baseUrl);
  const headers: Record<string, string> = { "user-agent": "bangui-soak" };
  let payload: Buffer | undefined;
  if (o.body !== undefined) {
    payload = Buffer.from(JSON.stringify(o.body));
    headers["content-type"] = "application/json";
    headers["content-length"] = String(payload.length);
  }
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (a: Answer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = request(
      { host: url.hostname, port: url.port, method, path: url.pathname, headers, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let json: unknown;
          try {
            json = text.length > 0 ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          finish({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
        res.on("error", (err: NodeJS.ErrnoException) => finish({ status: 0, headers: {}, json: undefined, error: err.code ?? err.message }));
      },
    );
    const timer = setTimeout(() => {
      finish({ status: 0, headers: {}, json: undefined, error: "timeout" });
      req.destroy();
    }, o.timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => finish({ status: 0, headers: {}, json: undefined, error: err.code ?? err.message }));
    req.end(payload);
  });
}

/** The session token from a login answer's Set-Cookie (any cookie name ending in bangui_session). */
export function tokenFrom(a: Answer): string | undefined {
  for (const c of a.headers["set-cookie"] ?? []) {
    const m = /^(?:__Host-)?bangui_session=([^;]+)/.exec(c);
    if (m !== null) return m[1];
  }
  return undefined;
}
