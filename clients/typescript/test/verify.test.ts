import assert from "node:assert/strict";
import { createPublicKey, verify as verifyEd25519 } from "node:crypto";
import { describe, test } from "node:test";
import {
  VERIFICATION_FAILURES,
  verify,
  WebhookVerificationError,
  type VerificationFailure,
} from "../src/index.js";
import { sharedJson } from "./support/server.js";

// The cases both SDKs must decide the same way (written by scripts/gen_signature_vectors.py).
interface VerificationCase {
  name: string;
  headers: Array<[string, string]>;
  body: string;
  key: string;
  now: number;
  tolerance_seconds?: number;
  allow_body_only?: boolean;
  expect: "ok" | "invalid_key" | VerificationFailure;
}
const VERIFICATION = sharedJson<{
  default_tolerance_seconds: number;
  reasons: Record<string, string>;
  cases: VerificationCase[];
}>("tests/vectors/verification.json");

// The Standard Webhooks test message signed v1a, shared with the Python tests.
const ED25519 = sharedJson<{
  id: string;
  public_key: string;
  timestamp: number;
  body: string;
  signature: string;
}>("tests/vectors/ed25519.json");

function rejects(reason: VerificationFailure, run: () => void): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(
      error instanceof WebhookVerificationError,
      `not a WebhookVerificationError: ${error}`,
    );
    assert.equal(error.reason, reason, error.message);
    assert.equal(error.name, "WebhookVerificationError");
    assert.ok(error.message.length > 0);
    return true;
  });
}

function runCase(
  c: VerificationCase,
  headers: Record<string, string> | Headers,
  body: string | Uint8Array,
): void {
  verify(headers, body, c.key, {
    now: new Date(c.now * 1000),
    toleranceSeconds: c.tolerance_seconds ?? VERIFICATION.default_tolerance_seconds,
    allowBodyOnly: c.allow_body_only ?? false,
  });
}

function decide(c: VerificationCase, run: () => void): void {
  if (c.expect === "ok") {
    run();
  } else if (c.expect === "invalid_key") {
    assert.throws(
      run,
      (error: unknown) => error instanceof TypeError && /whsec_|whpk_/.test(String(error)),
    );
  } else {
    rejects(c.expect, run);
  }
}

describe("verify: the cases shared with the Python SDK", () => {
  test("the reasons are the shared vocabulary", () => {
    assert.deepEqual([...VERIFICATION_FAILURES].sort(), Object.keys(VERIFICATION.reasons).sort());
    const expected = new Set(VERIFICATION.cases.map((c) => c.expect));
    for (const reason of VERIFICATION_FAILURES) assert.ok(expected.has(reason), reason);
  });

  for (const c of VERIFICATION.cases) {
    test(c.name, () => {
      const object = Object.fromEntries(c.headers);
      decide(c, () => runCase(c, object, c.body));
      // The same with a fetch Headers instance and the body as bytes.
      decide(c, () => runCase(c, new Headers(c.headers), Buffer.from(c.body, "utf8")));
    });
  }
});

describe("verify: headers", () => {
  const [first] = VERIFICATION.cases;
  assert.ok(first && first.expect === "ok");

  test("Node's IncomingHttpHeaders, a repeated header given as an array", () => {
    const headers: Record<string, string | string[]> = Object.fromEntries(
      first.headers.map(([name, value]) => [name.toLowerCase(), value]),
    );
    const signature = String(headers["webhook-signature"]);
    headers["webhook-signature"] = [`v1,${Buffer.alloc(32).toString("base64")}`, signature];
    verify(headers, first.body, first.key, { now: first.now * 1000 });
  });
});

describe("verify: Ed25519 (v1a)", () => {
  test("the shared vector verifies with node:crypto directly too", () => {
    const key = createPublicKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        x: Buffer.from(ED25519.public_key.slice("whpk_".length), "base64").toString("base64url"),
      },
      format: "jwk",
    });
    const message = Buffer.from(`${ED25519.id}.${ED25519.timestamp}.${ED25519.body}`, "utf8");
    const signature = Buffer.from(ED25519.signature.slice("v1a,".length), "base64");
    assert.ok(verifyEd25519(null, message, key, signature));
  });

  test("the default clock refuses the 2021 vector as too old", () => {
    const headers = {
      "webhook-id": ED25519.id,
      "webhook-timestamp": String(ED25519.timestamp),
      "webhook-signature": ED25519.signature,
    };
    rejects("timestamp_too_old", () => verify(headers, ED25519.body, ED25519.public_key));
  });
});
