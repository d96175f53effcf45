// The client against the real Python server (a subprocess on a free loopback port, SQLite) and a
// real HTTP receiver on 127.0.0.1.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { after, before, describe, test } from "node:test";
import type { Interceptor } from "@connectrpc/connect";
import {
  Code,
  ConnectError,
  DisabledReason,
  Ordering,
  PayloadMode,
  SubscriptionStatus,
  verify,
  WebhookVerificationError,
  WebhooksClient,
  type VerificationFailure,
} from "../src/index.js";
import { newTenant, nextEvents, productCreated } from "./support/feed.js";
import { Receiver } from "./support/receiver.js";
import { delay, TestServer, withTimeout } from "./support/server.js";

const TIMEOUT = { timeout: 60_000 };

/** The headers less `names` (lower case, as Node gives them), as an attacker would strip them. */
function withoutHeaders(headers: IncomingHttpHeaders, ...names: string[]): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !names.includes(name)));
}

function refuses(reason: VerificationFailure, run: () => void): void {
  assert.throws(
    run,
    (error: unknown) => error instanceof WebhookVerificationError && error.reason === reason,
  );
}

describe("WebhooksClient against a running server", TIMEOUT, () => {
  let server: TestServer;
  let receiver: Receiver;
  let client: WebhooksClient;

  before(async () => {
    server = await TestServer.start();
    receiver = await Receiver.start();
    client = new WebhooksClient(server.target, { timeoutMs: 10_000 });
  });

  after(async () => {
    client?.close();
    await receiver?.stop();
    await server?.dispose();
  });

  test(
    "publish stores the projected event; a repeated idempotency key publishes nothing",
    TIMEOUT,
    async () => {
      const tenantId = newTenant("publish");
      const occurredAt = new Date("2026-11-28T10:00:00.123Z");
      const event = await client.publish({
        tenantId,
        type: "product.price_changed",
        entityId: "prod_1",
        data: { id: "prod_1", sku: "A-1", selling_price: "19.90", cost_price: "7.10" },
        previous: { selling_price: "17.50" },
        occurredAt,
      });
      assert.match(event.id, /^evt_/);
      assert.ok(event.cursor);
      assert.equal(event.tenantId, tenantId);
      assert.deepEqual(event.data, { id: "prod_1", sku: "A-1", selling_price: "19.90" });
      assert.deepEqual(event.previous, { selling_price: "17.50" });
      assert.equal(event.occurredAt?.seconds, BigInt(Math.floor(occurredAt.getTime() / 1000)));

      const keyed = { ...productCreated(tenantId, 2), idempotencyKey: "import-42" };
      const first = await client.publish(keyed);
      const again = await client.publish(keyed);
      assert.equal(again.id, first.id);

      const batch = await client.publishMany([3, 4, 5].map((n) => productCreated(tenantId, n)));
      assert.deepEqual(
        batch.map((e) => e.entityId),
        ["prod_3", "prod_4", "prod_5"],
      );

      const page = await client.listEvents({ tenantId, pageSize: 100 });
      assert.deepEqual(
        page.events.map((e) => e.id),
        [event.id, first.id, ...batch.map((e) => e.id)],
      );
      assert.equal(page.hasMore, false);
      assert.ok(page.nextCursor);
    },
  );

  test("a refused event is not retried and says why", TIMEOUT, async () => {
    const calls: string[] = [];
    const countCalls: Interceptor = (next) => (request) => {
      calls.push(request.method.name);
      return next(request);
    };
    const counted = new WebhooksClient(server.target, {
      timeoutMs: 10_000,
      transport: { interceptors: [countCalls] },
    });
    try {
      await assert.rejects(
        counted.publish({ ...productCreated(newTenant("refused"), 1), type: "product.exploded" }),
        (error: unknown) => error instanceof ConnectError && error.code === Code.InvalidArgument,
      );
    } finally {
      counted.close();
    }
    assert.deepEqual(calls, ["PublishEvent"], "INVALID_ARGUMENT is answered once, not retried");
  });

  test("subscriptions: create, get, list, update, disable, activate, delete", TIMEOUT, async () => {
    const tenantId = newTenant("subs");
    const { subscription, secret } = await client.subscriptions.create({
      tenantId,
      url: receiver.url("/crud"),
      eventPatterns: ["customer.*"],
      description: "crud",
      metadata: { team: "billing" },
    });
    assert.match(subscription.id, /^sub_/);
    assert.match(secret, /^whsec_/);
    assert.equal(subscription.status, SubscriptionStatus.ACTIVE);
    assert.equal(subscription.payloadMode, PayloadMode.FULL);

    const got = await client.subscriptions.get(subscription.id, { tenantId });
    assert.equal(got.url, receiver.url("/crud"));
    assert.deepEqual(got.metadata, { team: "billing" });

    const updated = await client.subscriptions.update(subscription.id, {
      tenantId,
      description: "renamed",
      payloadMode: "thin",
      eventPatterns: ["customer.created"],
      ordering: "fifo",
      rateLimitPerSecond: 50,
    });
    assert.equal(updated.ordering, Ordering.FIFO);
    assert.equal(updated.rateLimitPerSecond, 50);
    assert.equal(updated.description, "renamed");
    assert.equal(updated.payloadMode, PayloadMode.THIN);
    assert.deepEqual(updated.eventPatterns, ["customer.created"]);
    assert.equal(updated.url, receiver.url("/crud"), "fields not named are kept");

    const disabled = await client.subscriptions.disable(subscription.id, { tenantId });
    assert.equal(disabled.status, SubscriptionStatus.DISABLED);
    assert.equal(disabled.disabledReason, DisabledReason.MANUAL);
    assert.deepEqual(
      (await client.subscriptions.list({ tenantId, status: "active" })).map((s) => s.id),
      [],
    );
    const activated = await client.subscriptions.activate(subscription.id, { tenantId });
    assert.equal(activated.status, SubscriptionStatus.ACTIVE);
    assert.deepEqual(
      (await client.subscriptions.list({ tenantId })).map((s) => s.id),
      [subscription.id],
    );

    await client.subscriptions.delete(subscription.id, { tenantId });
    await assert.rejects(
      client.subscriptions.get(subscription.id, { tenantId }),
      (error: unknown) => error instanceof ConnectError && error.code === Code.NotFound,
    );
    await assert.rejects(client.subscriptions.update(subscription.id, { tenantId }), TypeError);
  });

  test("subscriptions: filter, custom headers and replay", TIMEOUT, async () => {
    const tenantId = newTenant("replay");
    const kept = await client.publish(productCreated(tenantId, 1));
    await client.publish(productCreated(tenantId, 2));
    const { subscription } = await client.subscriptions.create({
      tenantId,
      url: receiver.url("/replay"),
      eventPatterns: ["product.*"],
      filter: 'entity_id == "prod_1"',
      headers: { "X-Tenant": "a" },
    });
    assert.equal(subscription.filter, 'entity_id == "prod_1"');
    assert.deepEqual(subscription.headers, { "X-Tenant": "a" });
    const replayed = await client.subscriptions.replay(subscription.id, { tenantId });
    assert.equal(replayed.queued, 1);
    assert.equal(replayed.hasMore, false);
    assert.equal((await client.subscriptions.replay(subscription.id, { tenantId })).queued, 0);
    const delivery = await receiver.waitFor((d) => d.json.id === kept.id);
    assert.equal(delivery.headers["x-tenant"], "a");
    const updated = await client.subscriptions.update(subscription.id, {
      tenantId,
      filter: "",
      headers: { "X-Tenant": "b" },
    });
    assert.equal(updated.filter, "");
    assert.deepEqual(updated.headers, { "X-Tenant": "b" });
  });

  /** A new tenant's subscription to `/${name}`, and the delivery of one product event to it. */
  async function deliverOne(name: string) {
    const tenantId = newTenant(name);
    const { secret } = await client.subscriptions.create({
      tenantId,
      url: receiver.url(`/${name}`),
      eventPatterns: ["product.*"],
    });
    const event = await client.publish(productCreated(tenantId, 1));
    const delivery = await receiver.waitFor((d) => d.json.id === event.id);
    return { secret, event, delivery };
  }

  test("a real delivery verifies with both signature headers", TIMEOUT, async () => {
    const { secret, event, delivery } = await deliverOne("verify");

    assert.equal(delivery.path, "/verify");
    assert.equal(delivery.headers["webhook-id"], event.id);
    assert.equal(delivery.headers["x-webhook-event"], "product.created");
    assert.equal(delivery.json.data["cost_price"], undefined, "confidential fields are never sent");

    verify(delivery.headers, delivery.body, secret);
    const bodyOnly = withoutHeaders(delivery.headers, "webhook-signature");
    verify(bodyOnly, delivery.body, secret, { allowBodyOnly: true });
    const fetchHeaders = new Headers();
    for (const [name, value] of Object.entries(delivery.headers)) {
      if (typeof value === "string") fetchHeaders.set(name, value);
    }
    verify(fetchHeaders, delivery.body.toString("utf8"), secret);

    const tampered = Buffer.from(delivery.body.toString("utf8").replace("SKU-1", "SKU-2"));
    for (const headers of [delivery.headers, bodyOnly]) {
      refuses("bad_signature", () => verify(headers, tampered, secret, { allowBodyOnly: true }));
    }
  });

  test(
    "a replayed delivery is refused, even with its webhook-* headers stripped",
    TIMEOUT,
    async () => {
      const { secret, delivery } = await deliverOne("replay");
      const sentMs = Number(delivery.headers["webhook-timestamp"]) * 1000;
      verify(delivery.headers, delivery.body, secret);

      // Captured and sent again ten minutes later: refused...
      const replayedAt = sentMs + 10 * 60_000;
      refuses("timestamp_too_old", () =>
        verify(delivery.headers, delivery.body, secret, { now: replayedAt }),
      );
      // ...and still refused once the headers that carry the timestamp are deleted (a downgrade to
      // the body-only X-Webhook-Signature, which is valid for ever).
      const stripped = withoutHeaders(
        delivery.headers,
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
      );
      assert.ok(stripped["x-webhook-signature"]);
      refuses("missing_signature", () =>
        verify(stripped, delivery.body, secret, { now: replayedAt }),
      );
      // Only a receiver that opts in takes the body-only scheme (and must then dedupe webhook-id).
      verify(stripped, delivery.body, secret, { now: replayedAt, allowBodyOnly: true });
      // A clock far behind the sender's is told apart from a replay.
      refuses("timestamp_in_future", () =>
        verify(delivery.headers, delivery.body, secret, { now: sentMs - 10 * 60_000 }),
      );
    },
  );

  test(
    "after a rotation a test delivery verifies with the old and the new secret",
    TIMEOUT,
    async () => {
      const tenantId = newTenant("rotate");
      const created = await client.subscriptions.create({
        tenantId,
        url: receiver.url("/rotate"),
        eventPatterns: ["*"],
      });
      const rotated = await client.subscriptions.rotateSecret(created.subscription.id, {
        tenantId,
        gracePeriodMs: 60 * 60_000,
      });
      assert.notEqual(rotated.secret, created.secret);
      assert.ok(rotated.subscription.previousSecretExpiresAt);

      const test = await client.subscriptions.sendTest(created.subscription.id, { tenantId });
      assert.equal(test.event.type, "webhook.test");
      assert.ok(test.deliveryId);
      const delivery = await receiver.waitFor((d) => d.json.id === test.event.id);
      assert.equal(String(delivery.headers["webhook-signature"]).split(" ").length, 2);
      assert.equal(String(delivery.headers["x-webhook-signature"]).split(" ").length, 2);
      const bodyOnly = withoutHeaders(delivery.headers, "webhook-signature");
      for (const secret of [created.secret, rotated.secret]) {
        verify(delivery.headers, delivery.body, secret);
        verify(bodyOnly, delivery.body, secret, { allowBodyOnly: true });
      }
    },
  );

  test(
    "an Ed25519 subscription's deliveries carry v1a (public key) and X-Webhook-Signature (secret)",
    TIMEOUT,
    async () => {
      const tenantId = newTenant("ed25519");
      const created = await client.subscriptions.create({
        tenantId,
        url: receiver.url("/ed25519"),
        eventPatterns: ["product.*"],
        signingAlgorithm: "ed25519",
      });
      assert.match(created.secret, /^whsec_/, "the shared secret, for X-Webhook-Signature");
      const publicKey = created.subscription.publicKey;
      assert.match(publicKey, /^whpk_/);

      const event = await client.publish(productCreated(tenantId, 1));
      const delivery = await receiver.waitFor((d) => d.json.id === event.id);
      assert.match(String(delivery.headers["webhook-signature"]), /^v1a,/);
      verify(delivery.headers, delivery.body, publicKey);
      const bodyOnly = { ...delivery.headers };
      delete bodyOnly["webhook-signature"];
      verify(bodyOnly, delivery.body, created.secret, { allowBodyOnly: true });
      const tampered = Buffer.from(delivery.body.toString("utf8").replace("SKU-1", "SKU-2"));
      refuses("bad_signature", () => verify(delivery.headers, tampered, publicKey));
    },
  );

  test("the feed streams the backlog, then live events", TIMEOUT, async () => {
    const tenantId = newTenant("feed");
    const backlog = await client.publishMany([1, 2, 3].map((n) => productCreated(tenantId, n)));
    const feed = client.feed({ tenantId });
    try {
      const first = await nextEvents(feed, 3);
      assert.deepEqual(
        first.map((e) => e.id),
        backlog.map((e) => e.id),
      );
      assert.deepEqual(first[0]?.data, backlog[0]?.data);

      const live = nextEvents(feed, 2);
      live.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      const published = [
        await client.publish(productCreated(tenantId, 4)),
        await client.publish(productCreated(tenantId, 5)),
      ];
      assert.deepEqual(
        (await live).map((e) => e.id),
        published.map((e) => e.id),
      );
      assert.equal(feed.cursor, published[1]?.cursor);
    } finally {
      feed.close();
    }
  });

  test("closing the client stops its feeds", TIMEOUT, async () => {
    const other = new WebhooksClient(server.target);
    const tenantId = newTenant("close");
    const first = await other.publish(productCreated(tenantId, 1));
    const feed = other.feed({ tenantId });
    assert.equal((await nextEvents(feed, 1))[0]?.id, first.id, "the stream is open");
    const pending = feed.next();
    pending.catch(() => undefined); // awaited below
    other.close();
    assert.deepEqual(await withTimeout(pending, 5_000, "the feed to end"), {
      done: true,
      value: undefined,
    });
    assert.ok(feed.closed);
    assert.throws(() => other.feed({ tenantId: "acme" }), /closed/);
  });

  test(
    "the feed keeps a heartbeat's cursor, and resumes after a consumer stops",
    TIMEOUT,
    async () => {
      const tenantId = newTenant("resume");
      await client.publishMany([1, 2].map((n) => productCreated(tenantId, n)));
      // From the head: nothing to yield, but the 1 s heartbeat tells where the head is.
      const idle = client.feed({ tenantId, fromLatest: true });
      const pending = idle.next();
      pending.catch(() => undefined); // awaited below
      const deadline = Date.now() + 10_000;
      while (!idle.cursor && Date.now() < deadline) await delay(50);
      assert.ok(idle.cursor, "a heartbeat's cursor is remembered");
      idle.close();
      assert.deepEqual(await pending, { done: true, value: undefined });

      const later = await client.publishMany([3, 4, 5].map((n) => productCreated(tenantId, n)));
      const feed = client.feed({ tenantId, afterCursor: idle.cursor });
      const seen: string[] = [];
      for await (const event of feed) {
        seen.push(event.id);
        if (seen.length === 1) break; // the consumer stops after one event
      }
      assert.deepEqual(seen, [later[0]?.id]);

      const resumed = client.feed({ tenantId, afterCursor: feed.cursor });
      try {
        const rest = await nextEvents(resumed, 2);
        assert.deepEqual(
          rest.map((e) => e.id),
          later.slice(1).map((e) => e.id),
        );
        // Nothing else follows: the next event is one published after them all.
        const sentinel = await client.publish(productCreated(tenantId, 6));
        assert.deepEqual((await nextEvents(resumed, 1)).map((e) => e.id), [sentinel.id]);
      } finally {
        resumed.close();
      }
    },
  );
});
