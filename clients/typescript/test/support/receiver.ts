/**
 * A webhook endpoint on 127.0.0.1 that records every request (headers and raw body) and answers
 * 204.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the receiver got. */
export interface ReceivedDelivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON (the delivery envelope). */
  json: { id: string; type: string; tenant_id: string; data: Record<string, unknown> };
}

export class Receiver {
  readonly deliveries: ReceivedDelivery[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server);
    server.on("request", (request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        let json: ReceivedDelivery["json"];
        try {
          json = JSON.parse(body.toString("utf8")) as ReceivedDelivery["json"];
        } catch {
          json = { id: "", type: "", tenant_id: "", data: {} };
        }
        receiver.deliveries.push({ path: request.url ?? "", headers: request.headers, body, json });
        response.writeHead(204).end();
        for (const wake of receiver.waiters.splice(0)) wake();
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    return receiver;
  }

  /** The URL to subscribe, e.g. `http://127.0.0.1:PORT/hooks`. */
  url(path = "/hooks"): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** The first delivery (received or to come) matching `match`; rejects after `timeoutMs`. */
  async waitFor(
    match: (delivery: ReceivedDelivery) => boolean,
    timeoutMs = 15_000,
  ): Promise<ReceivedDelivery> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.deliveries.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.deliveries.map((d) => `${d.json.type} ${d.json.id}`).join(", ");
        throw new Error(
          `no matching delivery within ${timeoutMs} ms (received: ${seen || "none"})`,
        );
      }
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}
