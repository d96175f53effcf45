/**
 * `WebhooksClient`: publish events, manage subscriptions and stream the feed over gRPC (HTTP/2).
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import {
  createGrpcTransport,
  Http2SessionManager,
  type GrpcTransportOptions,
} from "@connectrpc/connect-node";
import { Caller, required, type CallOptions } from "./calls.js";
import { Feed, type FeedOptions } from "./feed.js";
import { DeliveryService } from "./gen/webhooks/v1/deliveries_pb.js";
import {
  EventService,
  type Event,
  type PublishEventRequestSchema,
} from "./gen/webhooks/v1/events_pb.js";
import { FeedService } from "./gen/webhooks/v1/feed_pb.js";
import { SubscriptionService } from "./gen/webhooks/v1/subscriptions_pb.js";
import { DEFAULT_RETRY, retryPolicy, type RetryPolicy } from "./retry.js";
import { Subscriptions } from "./subscriptions.js";

/** One event to publish (`publish`, `publishMany`). */
export interface NewEvent {
  /** The tenant the event belongs to. */
  tenantId: string;
  /** A registered event type, e.g. `"product.price_changed"`. */
  type: string;
  /** The id of the entity that changed. */
  entityId: string;
  /**
   * The entity after the change (JSON-like). Fields its schema does not declare public or
   * internal are dropped by the server.
   */
  data: JsonObject;
  /** The prior values of the fields that changed. */
  previous?: JsonObject;
  /** When it happened; default: when it is published. */
  occurredAt?: Date;
  /**
   * The same key (per tenant) returns the original event instead of publishing twice. A random
   * one is used when left out, so the client's own retries never duplicate an event.
   */
  idempotencyKey?: string;
}

/** Options of a {@link WebhooksClient}. */
export interface WebhooksClientOptions {
  /** A bearer token, sent as `authorization: Bearer <token>`; none for an open dev server. */
  token?: string;
  /**
   * Backoff of calls that are safe to retry (publishing, reads) when the server answers
   * `UNAVAILABLE` (or the attempt's deadline passes). Default {@link DEFAULT_RETRY}.
   */
  retry?: Partial<RetryPolicy>;
  /** The deadline of each unary attempt, in milliseconds. Default 10 000; 0 for none. */
  timeoutMs?: number;
  /**
   * Further options of the Connect gRPC transport: TLS settings (`nodeOptions`), interceptors,
   * keep-alive pings (`pingIntervalMs`)…
   */
  transport?: Partial<Omit<GrpcTransportOptions, "baseUrl" | "sessionManager">>;
}

/** The generated Connect clients, for RPCs the client does not wrap (event types, deliveries). */
export interface Services {
  events: Client<typeof EventService>;
  subscriptions: Client<typeof SubscriptionService>;
  feed: Client<typeof FeedService>;
  deliveries: Client<typeof DeliveryService>;
}

/** One page of the feed ({@link WebhooksClient.listEvents}). */
export interface EventPage {
  events: Event[];
  /** Pass as `afterCursor` to continue; valid even when the page is empty. */
  nextCursor: string;
  hasMore: boolean;
}

/**
 * A client of a webhook-grpc server, over gRPC (HTTP/2).
 *
 * @example
 * ```ts
 * const client = new WebhooksClient("127.0.0.1:50051", { token: process.env.WEBHOOKS_TOKEN });
 * const event = await client.publish({
 *   tenantId: "acme", type: "product.created", entityId: "prod_1", data: { id: "prod_1" },
 * });
 * client.close();
 * ```
 *
 * Errors from the server are thrown as `ConnectError` (`code`, `rawMessage`, `findDetails`).
 */
export class WebhooksClient {
  /** Subscription management: `client.subscriptions.create(…)` and friends. */
  readonly subscriptions: Subscriptions;
  /** The generated clients, sharing this client's connection and token. */
  readonly services: Services;
  /** The server's base URL, e.g. `http://127.0.0.1:50051`. */
  readonly baseUrl: string;

  private readonly caller: Caller;
  private readonly sessions: Http2SessionManager;
  private readonly closed = new AbortController();

  /**
   * @param target - the server: `host:port` (plaintext, e.g. `127.0.0.1:50051`) or a URL
   *   (`http://host:port`, or `https://host:port` for TLS).
   * @param options - the token, retry policy, deadline and transport options.
   */
  constructor(target: string, options: WebhooksClientOptions = {}) {
    this.baseUrl = baseUrl(target);
    const transportOptions = options.transport ?? {};
    this.sessions = new Http2SessionManager(
      this.baseUrl,
      {
        pingIntervalMs: transportOptions.pingIntervalMs,
        pingIdleConnection: transportOptions.pingIdleConnection,
        pingTimeoutMs: transportOptions.pingTimeoutMs,
        idleConnectionTimeoutMs: transportOptions.idleConnectionTimeoutMs,
      },
      transportOptions.nodeOptions,
    );
    const interceptors = [...(transportOptions.interceptors ?? [])];
    if (options.token) interceptors.unshift(bearer(options.token));
    const transport = createGrpcTransport({
      ...transportOptions,
      baseUrl: this.baseUrl,
      sessionManager: this.sessions,
      interceptors,
    });
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.caller = new Caller(
      retryPolicy(options.retry, DEFAULT_RETRY),
      timeoutMs > 0 ? timeoutMs : undefined,
    );
    this.services = {
      events: createClient(EventService, transport),
      subscriptions: createClient(SubscriptionService, transport),
      feed: createClient(FeedService, transport),
      deliveries: createClient(DeliveryService, transport),
    };
    this.subscriptions = new Subscriptions(
      this.services.subscriptions,
      this.caller,
      this.services.deliveries,
    );
  }

  /**
   * Publish one event; returns it as stored (id, cursor, projected data).
   *
   * Retried on `UNAVAILABLE` (and a passed deadline) with exponential backoff. Every attempt
   * carries the same idempotency key (a random one when the event has none), so a retry after a
   * commit whose answer was lost returns the original event: never a duplicate.
   */
  async publish(event: NewEvent, options?: CallOptions): Promise<Event> {
    const request = publishRequest(event);
    const response = await this.caller.retrying(
      (call) => this.services.events.publishEvent(request, call),
      options,
    );
    return required(response.event);
  }

  /**
   * Publish up to 500 events atomically (all or none); returns them in order. Each event without
   * an idempotency key gets a random one, so retries are as safe as in {@link publish}.
   */
  async publishMany(events: readonly NewEvent[], options?: CallOptions): Promise<Event[]> {
    const request = { events: events.map(publishRequest) };
    const response = await this.caller.retrying(
      (call) => this.services.events.publishEvents(request, call),
      options,
    );
    return response.events;
  }

  /**
   * Stream a tenant's events: the backlog after `afterCursor`, then live events, reconnecting
   * after a disconnect from the last cursor seen (never a duplicate, never a gap).
   *
   * @example
   * ```ts
   * const feed = client.feed({ tenantId: "acme", afterCursor: savedCursor });
   * for await (const event of feed) {
   *   await handle(event);
   *   await save(feed.cursor);
   * }
   * ```
   */
  feed(options: FeedOptions = {}): Feed {
    if (this.closed.signal.aborted) throw new Error("the client is closed");
    const service = this.services.feed;
    return new Feed(
      (request, call) => service.streamEvents(request, call),
      options,
      this.closed.signal,
    );
  }

  /** One page of the feed after a cursor (`ListEvents`); reads are retried like publishing. */
  async listEvents(
    options: Omit<FeedOptions, "fromLatest" | "retry" | "idleTimeoutMs" | "signal"> &
      CallOptions & { pageSize?: number } = {},
  ): Promise<EventPage> {
    const request = {
      tenantId: options.tenantId ?? "",
      afterCursor: options.afterCursor ?? "",
      pageSize: options.pageSize ?? 0,
      eventPatterns: [...(options.eventPatterns ?? [])],
      entityId: options.entityId ?? "",
    };
    const response = await this.caller.retrying(
      (call) => this.services.feed.listEvents(request, call),
      options,
    );
    return { events: response.events, nextCursor: response.nextCursor, hasMore: response.hasMore };
  }

  /**
   * Stop every feed of this client and close its connection. Calls made afterwards open a new
   * connection; feeds cannot be started any more.
   */
  close(): void {
    this.closed.abort();
    this.sessions.abort();
  }
}

function baseUrl(target: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`;
  return url.replace(/\/+$/, "");
}

function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

function publishRequest(event: NewEvent): MessageInitShape<typeof PublishEventRequestSchema> {
  const request: MessageInitShape<typeof PublishEventRequestSchema> = {
    tenantId: event.tenantId,
    type: event.type,
    entityId: event.entityId,
    data: event.data,
    // Made once, before the first attempt: every retry carries the same key, so a retry after a
    // commit whose answer was lost returns the original event.
    idempotencyKey: event.idempotencyKey || randomUUID(),
  };
  if (event.previous !== undefined) request.previous = event.previous;
  if (event.occurredAt !== undefined) request.occurredAt = timestampFromDate(event.occurredAt);
  return request;
}
