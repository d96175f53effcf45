/**
 * An async iterator over a tenant's feed that survives disconnects without gaps or duplicates.
 *
 * @module
 */
import { clone, create } from "@bufbuild/protobuf";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import type { Event } from "./gen/webhooks/v1/events_pb.js";
import {
  StreamEventsRequestSchema,
  type StreamEventsRequest,
  type StreamEventsResponse,
} from "./gen/webhooks/v1/feed_pb.js";
import { backoffDelayMs, FEED_RETRY, retryPolicy, sleep, type RetryPolicy } from "./retry.js";

/** Where the feed starts and which events it carries (`WebhooksClient.feed`). */
export interface FeedOptions {
  /** The tenant; may be left out with a tenant token (its own tenant). */
  tenantId?: string;
  /**
   * Start after this cursor (from an event, a heartbeat or `Feed.cursor`); empty or left out
   * means the earliest retained event, unless `fromLatest`.
   */
  afterCursor?: string;
  /** Start at the current head: only events published from now on (ignored with a cursor). */
  fromLatest?: boolean;
  /** Exact types, `"entity.*"` or `"*"`; empty means every type. */
  eventPatterns?: readonly string[];
  /** Only the events of this entity. */
  entityId?: string;
  /**
   * Reconnection backoff; the feed gives up, throwing the last error, after `maxAttempts`
   * consecutive failed connections (`Infinity`: never). Default {@link FEED_RETRY}.
   */
  retry?: Partial<RetryPolicy>;
  /**
   * Reconnect when nothing (no event, no heartbeat) arrives for this long, in milliseconds: a
   * connection that died silently. Set it to a few times the server's `feed_heartbeat` (15 s by
   * default). Default: off.
   */
  idleTimeoutMs?: number;
  /** Stops the feed like {@link Feed.close}. */
  signal?: AbortSignal;
}

/** Opens one StreamEvents call (the generated client's `streamEvents`). */
export type StreamEventsFn = (
  request: StreamEventsRequest,
  options: CallOptions,
) => AsyncIterable<StreamEventsResponse>;

/**
 * Events of one tenant in cursor order: the backlog after a start, then live events.
 *
 * Iterate with `for await (const event of feed)`. The feed remembers the cursor of the last
 * event it yielded, and of every heartbeat the server sends while idle, in {@link Feed.cursor}.
 * When the stream breaks (`UNAVAILABLE`, a server restart, a dropped connection, or the server
 * ending the stream) it reconnects after that cursor with exponential backoff, so every later
 * event is yielded exactly once. It gives up, throwing the last `ConnectError`, after
 * `retry.maxAttempts` consecutive failed connections; other errors (`INVALID_ARGUMENT`,
 * `OUT_OF_RANGE` for a purged cursor, `PERMISSION_DENIED`…) are thrown at once.
 *
 * Store `cursor` durably after handling each event to resume a later process where this one
 * stopped (pass it as `afterCursor`). Leaving the loop (`break`, `return`, a thrown error), calling
 * {@link Feed.close} or aborting `signal` cancels the stream. A feed is iterated once.
 */
export class Feed implements AsyncIterableIterator<Event> {
  /** Position after the last event yielded (or the last heartbeat); resume from here. */
  cursor: string;
  /** How many times the feed has reconnected (for monitoring). */
  reconnects = 0;

  private readonly request: StreamEventsRequest;
  private readonly retry: RetryPolicy;
  private readonly idleTimeoutMs: number | undefined;
  private readonly stopped = new AbortController();
  private readonly events: AsyncGenerator<Event, void, undefined>;
  // Removes the listeners on outside signals, so that a finished feed is not kept alive by them.
  private readonly unlink: Array<() => void> = [];

  /**
   * Use `WebhooksClient.feed` rather than this constructor.
   *
   * @param streamEvents - opens one StreamEvents call.
   * @param options - where to start, filters, backoff; `signal` stops the feed.
   * @param clientSignal - the client's: closing the client stops the feed too.
   */
  constructor(
    private readonly streamEvents: StreamEventsFn,
    options: FeedOptions = {},
    clientSignal?: AbortSignal,
  ) {
    this.request = create(StreamEventsRequestSchema, {
      tenantId: options.tenantId ?? "",
      afterCursor: options.afterCursor ?? "",
      fromLatest: options.fromLatest ?? false,
      eventPatterns: [...(options.eventPatterns ?? [])],
      entityId: options.entityId ?? "",
    });
    this.cursor = this.request.afterCursor;
    this.retry = retryPolicy(options.retry, FEED_RETRY);
    if (options.idleTimeoutMs !== undefined && !(options.idleTimeoutMs > 0)) {
      throw new RangeError("idleTimeoutMs must be positive");
    }
    this.idleTimeoutMs = options.idleTimeoutMs;
    for (const signal of [options.signal, clientSignal]) {
      if (signal === undefined) continue;
      if (signal.aborted) this.close();
      const onAbort = (): void => this.close();
      signal.addEventListener("abort", onAbort, { once: true });
      this.unlink.push(() => signal.removeEventListener("abort", onAbort));
    }
    this.events = this.run();
  }

  /** True once the feed was closed (by {@link Feed.close}, the signal, or leaving the loop). */
  get closed(): boolean {
    return this.stopped.signal.aborted;
  }

  /** Cancel the stream and end the iteration (a pending `next()` resolves as done). */
  close(): void {
    this.stopped.abort(new ConnectError("the feed was closed", Code.Canceled));
    for (const unlink of this.unlink.splice(0)) unlink();
  }

  [Symbol.asyncIterator](): Feed {
    return this;
  }

  next(): Promise<IteratorResult<Event, void>> {
    return this.events.next();
  }

  async return(): Promise<IteratorResult<Event, void>> {
    this.close();
    return this.events.return(undefined);
  }

  async throw(error?: unknown): Promise<IteratorResult<Event, void>> {
    this.close();
    return this.events.throw(error);
  }

  private nextRequest(): StreamEventsRequest {
    const request = clone(StreamEventsRequestSchema, this.request);
    if (this.cursor) {
      // Once a position is known, resume after it, never from the head again.
      request.afterCursor = this.cursor;
      request.fromLatest = false;
    }
    return request;
  }

  private async *run(): AsyncGenerator<Event, void, undefined> {
    try {
      yield* this.follow();
    } finally {
      // However it ended (a thrown error included), it is over: release the signals.
      this.close();
    }
  }

  private async *follow(): AsyncGenerator<Event, void, undefined> {
    let failures = 0;
    while (!this.closed) {
      const connection = new Connection(this.stopped.signal, this.idleTimeoutMs);
      let error: unknown;
      try {
        const responses = this.streamEvents(this.nextRequest(), { signal: connection.signal });
        connection.watch();
        for await (const response of responses) {
          failures = 0;
          for (const event of response.events) {
            this.cursor = event.cursor;
            // The consumer's time is not the server's silence.
            connection.pause();
            yield event;
            if (this.closed) return;
            connection.watch();
          }
          if (response.cursor) this.cursor = response.cursor;
          connection.watch();
        }
      } catch (caught) {
        if (this.closed) return;
        if (!connection.idledOut && !isTransient(caught)) throw caught;
        error = caught;
      } finally {
        connection.end();
      }
      // The stream ended: with a transient error, or a server that closed it. Reconnect.
      failures += 1;
      if (failures >= this.retry.maxAttempts) {
        throw (
          error ??
          new ConnectError(
            `the feed stream ended ${failures} times in a row without sending anything`,
            Code.Unavailable,
          )
        );
      }
      try {
        await sleep(backoffDelayMs(this.retry, failures), this.stopped.signal);
      } catch {
        return; // closed while waiting
      }
      this.reconnects += 1;
    }
  }
}

// A stream breaks with these when the server goes away, restarts (its shutdown cancels open
// streams) or the connection drops; a server's own answer to a bad request never uses them.
const TRANSIENT = new Set<Code>([
  Code.Unavailable,
  Code.Aborted,
  Code.Canceled,
  Code.DeadlineExceeded,
]);

function isTransient(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  if (TRANSIENT.has(error.code)) return true;
  // A connection torn down mid-stream surfaces as INTERNAL from the HTTP/2 layer, not from the
  // server (which would have sent a grpc-status).
  return (
    error.code === Code.Internal && /http\/2|stream closed|premature|socket/i.test(error.rawMessage)
  );
}

/** One StreamEvents call: its cancellation, and the idle watchdog. */
class Connection {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onStop = (): void => this.controller.abort(this.stopSignal.reason);
  idledOut = false;

  constructor(
    private readonly stopSignal: AbortSignal,
    private readonly idleTimeoutMs: number | undefined,
  ) {
    stopSignal.addEventListener("abort", this.onStop, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** (Re)start the idle watchdog. */
  watch(): void {
    this.pause();
    if (this.idleTimeoutMs === undefined) return;
    this.timer = setTimeout(() => {
      this.idledOut = true;
      this.controller.abort(
        new ConnectError(
          `no message from the feed within ${this.idleTimeoutMs} ms`,
          Code.Unavailable,
        ),
      );
    }, this.idleTimeoutMs);
  }

  pause(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Cancel the call (a no-op once it finished) and forget the listeners. */
  end(): void {
    this.pause();
    this.stopSignal.removeEventListener("abort", this.onStop);
    this.controller.abort();
  }
}
