/**
 * A protected app for proxy tests: a node:http server on a free loopback port that answers every request
 * with the request it received as JSON ({method, url, headers, rawHeaders}) and keeps them all.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the upstream received. */
export interface EchoedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  /** Names and values as sent, in order (names in their original letter case). */
  rawHeaders: string[];
}

export interface EchoUpstream {
  readonly port: number;
  readonly received: EchoedRequest[];
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const received: EchoedRequest[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const seen: EchoedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders };
      received.push(seen);
      const body = JSON.stringify(seen);
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every value the upstream got under a header whose name, lower-cased with `_` read as `-`, is `name`. */
export function headerValues(seen: EchoedRequest, name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    if (seen.rawHeaders[i]!.toLowerCase().replace(/_/g, "-") === want) out.push(seen.rawHeaders[i + 1]!);
  }
  return out;
}
