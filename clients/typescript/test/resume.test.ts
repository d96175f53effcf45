// A server restart under a live feed and a publisher: the feed reconnects after its cursor and
// the publisher retries UNAVAILABLE, with no event lost, repeated or published twice.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, WebhooksClient } from "../src/index.js";
import { newTenant, nextEvents, productCreated } from "./support/feed.js";
import { delay, TestServer, withTimeout } from "./support/server.js";

const TIMEOUT = { timeout: 120_000 };
const PATIENT = { maxAttempts: 200, initialDelayMs: 100, maxDelayMs: 500 };

describe("across a server restart", TIMEOUT, () => {
  let server: TestServer;
  let client: WebhooksClient;
  // The codes of failed PublishEvent attempts, seen by an interceptor.
  const publishFailures: Code[] = [];
  const recordFailures: Interceptor = (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      if (request.method.name === "PublishEvent") {
        publishFailures.push(ConnectError.from(error).code);
      }
      throw error;
    }
  };

  before(async () => {
    server = await TestServer.start();
    client = new WebhooksClient(server.target, {
      // Enough attempts to outlast a restart (2 s of shutdown grace plus start-up, which can take
      // a while on a busy machine): up to 200 attempts, 50 s on average.
      retry: PATIENT,
      transport: { interceptors: [recordFailures] },
    });
  });

  after(async () => {
    client?.close();
    await server?.dispose();
  });

  test(
    "the feed resumes from its cursor and publish retries until the server is back",
    TIMEOUT,
    async () => {
      const tenantId = newTenant("restart");
      const before = await client.publishMany([1, 2, 3].map((n) => productCreated(tenantId, n)));
      const feed = client.feed({
        tenantId,
        retry: PATIENT,
      });
      try {
        const backlog = await nextEvents(feed, 3);
        assert.deepEqual(
          backlog.map((e) => e.id),
          before.map((e) => e.id),
        );
        const live = await client.publish(productCreated(tenantId, 4));
        assert.equal((await nextEvents(feed, 1))[0]?.id, live.id);

        // The feed waits for its next event while the server goes down and comes back; a
        // publisher calls while it is down.
        const waiting = nextEvents(feed, 3, 60_000);
        waiting.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        await server.stop();
        const duringOutage = client.publish(productCreated(tenantId, 5));
        duringOutage.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        const deadline = Date.now() + 30_000;
        while (publishFailures.length === 0) {
          assert.ok(Date.now() < deadline, "the publish during the outage was not refused");
          await delay(20);
        }
        await server.restart();
        const published = [
          await withTimeout(duringOutage, 30_000, "publish during the outage"),
          await client.publish(productCreated(tenantId, 6)),
          await client.publish(productCreated(tenantId, 7)),
        ];

        const resumed = await waiting;
        assert.deepEqual(
          resumed.map((e) => e.id),
          published.map((e) => e.id),
        );
        assert.ok(feed.reconnects >= 1, "the feed reconnected");
        assert.ok(publishFailures.length >= 1, "the publish during the outage was retried");
        assert.ok(
          publishFailures.every((code) => code === Code.Unavailable),
          String(publishFailures),
        );

        // Exactly one stored event per publish call: the retries reused their idempotency key.
        const page = await client.listEvents({ tenantId, pageSize: 100 });
        assert.deepEqual(
          page.events.map((e) => e.entityId),
          ["prod_1", "prod_2", "prod_3", "prod_4", "prod_5", "prod_6", "prod_7"],
        );
      } finally {
        feed.close();
      }
    },
  );
});
