import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { verify, WebhookVerificationError, type VerificationFailure } from "../src/index.js";
import { sharedJson } from "./support/server.js";

// The Standard Webhooks test vector (SPEC §4), shared with the Python tests.
const VECTOR = sharedJson<{
  id: string;
  secret: string;
  timestamp: number;
  body: string;
  signature: string;
}>("tests/vectors/standard_webhooks.json");
const ID = VECTOR.id;
const SECRET = VECTOR.secret;
const TIMESTAMP = String(VECTOR.timestamp);
const BODY = VECTOR.body;
const SIGNATURE = VECTOR.signature;
const NOW = new Date(Number(TIMESTAMP) * 1000);

const OTHER_SECRET = "whsec_" + Buffer.alloc(32, 7).toString("base64");

function standardHeaders(signature = SIGNATURE): Record<string, string> {
  return { "webhook-id": ID, "webhook-timestamp": TIMESTAMP, "webhook-signature": signature };
}

function overviewSignature(body: string, secret: string): string {
  return "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
}

function rejects(reason: VerificationFailure, run: () => void): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(
      error instanceof WebhookVerificationError,
      `not a WebhookVerificationError: ${error}`,
    );
    assert.equal(error.reason, reason, error.message);
    assert.equal(error.name, "WebhookVerificationError");
    return true;
  });
}

describe("verify: webhook-signature (Standard Webhooks)", () => {
  test("accepts the reference test vector", () => {
    verify(standardHeaders(), BODY, SECRET, { now: NOW });
  });

  test("accepts the body as bytes, and headers in any case or as a Headers instance", () => {
    const headers = {
      "Webhook-Id": ID,
      "WEBHOOK-TIMESTAMP": TIMESTAMP,
      "Webhook-Signature": SIGNATURE,
    };
    verify(headers, Buffer.from(BODY), SECRET, { now: NOW });
    verify(new Headers(standardHeaders()), new TextEncoder().encode(BODY), SECRET, { now: NOW });
    verify(standardHeaders(), BODY, SECRET, { now: NOW.getTime() });
  });

  test("accepts a list of signatures (rotation) when one matches", () => {
    const list = `v1,${Buffer.alloc(32).toString("base64")} v1a,whatever ${SIGNATURE}`;
    verify(standardHeaders(list), BODY, SECRET, { now: NOW });
  });

  test("refuses a changed body, a wrong secret, or a changed id", () => {
    rejects("bad_signature", () =>
      verify(standardHeaders(), '{"test": 2432232315}', SECRET, { now: NOW }),
    );
    rejects("bad_signature", () => verify(standardHeaders(), BODY, OTHER_SECRET, { now: NOW }));
    rejects("bad_signature", () =>
      verify({ ...standardHeaders(), "webhook-id": "msg_other" }, BODY, SECRET, { now: NOW }),
    );
    rejects("bad_signature", () => verify(standardHeaders("v1,"), BODY, SECRET, { now: NOW }));
  });

  test("refuses a timestamp outside the tolerance, either way", () => {
    const later = new Date(NOW.getTime() + 301_000);
    const earlier = new Date(NOW.getTime() - 301_000);
    rejects("timestamp_too_old", () => verify(standardHeaders(), BODY, SECRET, { now: later }));
    rejects("timestamp_in_future", () => verify(standardHeaders(), BODY, SECRET, { now: earlier }));
    verify(standardHeaders(), BODY, SECRET, { now: later, toleranceSeconds: 400 });
    // The default clock: the vector is from 2021.
    rejects("timestamp_too_old", () => verify(standardHeaders(), BODY, SECRET));
  });

  test("refuses missing or malformed webhook-id and webhook-timestamp", () => {
    rejects("missing_header", () =>
      verify({ "webhook-timestamp": TIMESTAMP, "webhook-signature": SIGNATURE }, BODY, SECRET, {
        now: NOW,
      }),
    );
    rejects("missing_header", () =>
      verify({ "webhook-id": ID, "webhook-signature": SIGNATURE }, BODY, SECRET, { now: NOW }),
    );
    rejects("invalid_timestamp", () =>
      verify({ ...standardHeaders(), "webhook-timestamp": "1614265330.5" }, BODY, SECRET, {
        now: NOW,
      }),
    );
  });

  test("a malformed secret is a configuration error, not a bad request", () => {
    assert.throws(
      () => verify(standardHeaders(), BODY, "whsec_not base64!", { now: NOW }),
      TypeError,
    );
  });
});

describe("verify: X-Webhook-Signature", () => {
  const body = '{"id":"evt_1","type":"product.created"}';

  test("accepts sha256= hex HMAC of the body keyed with the whole secret string", () => {
    verify({ "X-Webhook-Signature": overviewSignature(body, SECRET) }, body, SECRET);
    verify(new Headers({ "x-webhook-signature": overviewSignature(body, SECRET) }), body, SECRET);
  });

  test("accepts a list during rotation, refuses when none matches", () => {
    const list = `${overviewSignature(body, OTHER_SECRET)} ${overviewSignature(body, SECRET)}`;
    verify({ "x-webhook-signature": list }, body, SECRET);
    verify({ "x-webhook-signature": list }, body, OTHER_SECRET);
    rejects("bad_signature", () =>
      verify({ "x-webhook-signature": overviewSignature(body, OTHER_SECRET) }, body, SECRET),
    );
    rejects("bad_signature", () =>
      verify({ "x-webhook-signature": overviewSignature(body, SECRET) }, body + " ", SECRET),
    );
  });

  test("webhook-signature decides when both are present, unless a scheme is named", () => {
    const headers = {
      ...standardHeaders("v1,bm9wZQ=="),
      "x-webhook-signature": overviewSignature(BODY, SECRET),
    };
    rejects("bad_signature", () => verify(headers, BODY, SECRET, { now: NOW }));
    verify(headers, BODY, SECRET, { scheme: "x-webhook-signature" });
    rejects("missing_signature", () =>
      verify({ "x-webhook-signature": overviewSignature(BODY, SECRET) }, BODY, SECRET, {
        scheme: "webhook-signature",
      }),
    );
  });

  test("refuses a request without any signature header", () => {
    rejects("missing_signature", () =>
      verify({ "content-type": "application/json" }, BODY, SECRET),
    );
  });
});
