// The feed's reconnection logic against a scripted stream (no server): see integration.test.ts
// and resume.test.ts for the same against the real one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { Code, ConnectError, Feed, v1 } from "../src/index.js";
import { backoffDelayMs, retryPolicy, withRetry } from "../src/retry.js";

type Step = v1.StreamEventsResponse | ConnectError | "hang";

function event(n: number): v1.Event {
  return create(v1.EventSchema, { id: `evt_${n}`, cursor: `c${n}` });
}

function batch(...numbers: number[]): v1.StreamEventsResponse {
  const events = numbers.map(event);
  return create(v1.StreamEventsResponseSchema, { events, cursor: events.at(-1)?.cursor ?? "" });
}

function heartbeat(cursor: string): v1.StreamEventsResponse {
  return create(v1.StreamEventsResponseSchema, { cursor, heartbeat: { cursor } });
}

/** A fake StreamEvents: one script per connection; records each request and its signal. */
function scripted(...connections: Step[][]) {
  const requests: v1.StreamEventsRequest[] = [];
  const signals: AbortSignal[] = [];
  const stream = async function* (
    request: v1.StreamEventsRequest,
    options: CallOptions,
  ): AsyncGenerator<v1.StreamEventsResponse> {
    requests.push(request);
    const signal = options.signal;
    assert.ok(signal);
    signals.push(signal);
    const script = connections.shift() ?? [new ConnectError("no more scripts", Code.Internal)];
    for (const step of script) {
      if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      if (step === "hang") {
        await new Promise((_, fail) =>
          signal.addEventListener("abort", () =>
            fail(ConnectError.from(signal.reason, Code.Canceled)),
          ),
        );
      } else if (step instanceof ConnectError) {
        throw step;
      } else {
        yield step;
      }
    }
  };
  return { stream, requests, signals };
}

const FAST = { initialDelayMs: 1, maxDelayMs: 1 };

async function take(feed: Feed, count: number): Promise<string[]> {
  const ids: string[] = [];
  for await (const item of feed) {
    ids.push(item.id);
    if (ids.length === count) break;
  }
  return ids;
}

describe("Feed", () => {
  test("reconnects after the last event or heartbeat cursor: no gap, no duplicate", async () => {
    const fake = scripted(
      [batch(1, 2), new ConnectError("server restarting", Code.Unavailable)],
      [batch(3), heartbeat("h3")], // then the server ends the stream normally
      [new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled)],
      [batch(4, 5)],
    );
    const feed = new Feed(fake.stream, { tenantId: "acme", fromLatest: true, retry: FAST });
    assert.deepEqual(await take(feed, 5), ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"]);
    assert.deepEqual(
      fake.requests.map((r) => [r.tenantId, r.afterCursor, r.fromLatest]),
      [
        ["acme", "", true],
        ["acme", "c2", false],
        ["acme", "h3", false],
        ["acme", "h3", false],
      ],
    );
    assert.equal(feed.reconnects, 3);
    assert.equal(feed.cursor, "c5");
    assert.ok(feed.closed);
    assert.ok(
      fake.signals.every((s) => s.aborted),
      "every call was cancelled",
    );
  });

  test("a consumer that stops mid-batch resumes at the next event of that batch", async () => {
    const first = scripted([batch(1, 2, 3)]);
    const feed = new Feed(first.stream, { afterCursor: "c0" });
    assert.deepEqual(await take(feed, 2), ["evt_1", "evt_2"]);
    assert.equal(feed.cursor, "c2");
    assert.ok(first.signals[0]?.aborted, "leaving the loop cancels the stream");

    const second = scripted([batch(3, 4)]);
    const resumed = new Feed(second.stream, { afterCursor: feed.cursor });
    assert.deepEqual(await take(resumed, 2), ["evt_3", "evt_4"]);
    assert.equal(second.requests[0]?.afterCursor, "c2");
  });

  test("errors that are not transient are thrown at once", async () => {
    const fake = scripted([batch(1), new ConnectError("cursor purged", Code.OutOfRange)]);
    const feed = new Feed(fake.stream, { retry: FAST });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of feed) seen.push(item.id);
      })(),
      (error: unknown) => error instanceof ConnectError && error.code === Code.OutOfRange,
    );
    assert.deepEqual(seen, ["evt_1"]);
    assert.equal(fake.requests.length, 1);
  });

  test("gives up after maxAttempts failed connections in a row, with the last error", async () => {
    const down = (n: number) => [new ConnectError(`down ${n}`, Code.Unavailable)];
    const fake = scripted(down(1), down(2), down(3), down(4));
    const feed = new Feed(fake.stream, { retry: { ...FAST, maxAttempts: 3 } });
    await assert.rejects(take(feed, 1), /down 3/);
    assert.equal(fake.requests.length, 3);
  });

  test("any message resets the count of failures", async () => {
    const fake = scripted(
      [new ConnectError("down", Code.Unavailable)],
      [heartbeat("h0"), new ConnectError("down", Code.Unavailable)],
      [heartbeat("h0"), new ConnectError("down", Code.Unavailable)],
      [batch(1)],
    );
    const feed = new Feed(fake.stream, { retry: { ...FAST, maxAttempts: 2 } });
    assert.deepEqual(await take(feed, 1), ["evt_1"]);
  });

  test("idleTimeoutMs reconnects a stream that went silent", async () => {
    const fake = scripted([batch(1), "hang"], [batch(2)]);
    const feed = new Feed(fake.stream, { retry: FAST, idleTimeoutMs: 50 });
    assert.deepEqual(await take(feed, 2), ["evt_1", "evt_2"]);
    assert.equal(fake.requests[1]?.afterCursor, "c1");
  });

  test("close() ends a pending iteration, and so does the signal", async () => {
    const fake = scripted(["hang"]);
    const feed = new Feed(fake.stream);
    const next = feed.next();
    setTimeout(() => feed.close(), 20);
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.ok(fake.signals[0]?.aborted);

    const controller = new AbortController();
    const other = scripted(["hang"]);
    const viaSignal = new Feed(other.stream, { signal: controller.signal });
    const pending = viaSignal.next();
    setTimeout(() => controller.abort(), 20);
    assert.deepEqual(await pending, { done: true, value: undefined });
  });
});

describe("retry", () => {
  test("backoff bounds grow exponentially up to maxDelayMs", () => {
    const policy = retryPolicy({ initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2 });
    const bounds = [1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n, () => 1));
    assert.deepEqual(bounds, [100, 200, 400, 800, 1_000]);
    assert.equal(
      backoffDelayMs(policy, 3, () => 0),
      0,
    );
    assert.throws(() => retryPolicy({ maxAttempts: 0 }), RangeError);
  });

  test("withRetry repeats UNAVAILABLE only, up to maxAttempts", async () => {
    let calls = 0;
    const result = await withRetry(retryPolicy(FAST), async () => {
      calls += 1;
      if (calls < 3) throw new ConnectError("down", Code.Unavailable);
      return "ok";
    });
    assert.equal(result, "ok");
    assert.equal(calls, 3);

    calls = 0;
    await assert.rejects(
      withRetry(retryPolicy(FAST), async () => {
        calls += 1;
        throw new ConnectError("bad", Code.InvalidArgument);
      }),
      /bad/,
    );
    assert.equal(calls, 1);

    calls = 0;
    await assert.rejects(
      withRetry(retryPolicy({ ...FAST, maxAttempts: 4 }), async () => {
        calls += 1;
        throw new ConnectError("down", Code.Unavailable);
      }),
      /down/,
    );
    assert.equal(calls, 4);
  });
});
