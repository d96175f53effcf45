/**
 * Verify that an HTTP delivery really comes from webhook-grpc (for the receiving endpoint).
 *
 * A delivery carries up to two signatures of the same body:
 *
 * - `webhook-signature` (Standard Webhooks), checked by default: signatures over
 *   `${webhook-id}.${webhook-timestamp}.${body}`, so the id and the time of sending are signed too
 *   and a delivery replayed later than the tolerance is refused. `v1,` + base64 HMAC-SHA256 keyed
 *   with the base64-decoded part of the secret after `whsec_`; or, for subscriptions signing with
 *   Ed25519, `v1a,` + base64 Ed25519 signature, checked with the public key `whpk_…`.
 * - `X-Webhook-Signature`: `sha256=` + hex HMAC-SHA256 of the raw body, keyed with the secret
 *   string exactly as issued (UTF-8). It covers no timestamp: a captured delivery stays valid for
 *   ever, so it is accepted only when the caller opts in with `{ allowBodyOnly: true }`.
 *
 * During a rotation either header may hold several space-separated signatures; one match is
 * enough. The kind of key decides the algorithm: a `whsec_` secret only ever checks `v1` (HMAC)
 * signatures and a `whpk_` public key only `v1a` (Ed25519) ones, so neither can be passed off as
 * the other.
 *
 * @module
 */
import {
  createHmac,
  createPublicKey,
  timingSafeEqual,
  verify as verifySignature,
  type KeyObject,
} from "node:crypto";

const SECRET_PREFIX = "whsec_";
const PUBLIC_KEY_PREFIX = "whpk_";
const PRIVATE_KEY_PREFIX = "whsk_";
const STANDARD_HEADER = "webhook-signature";
const OVERVIEW_HEADER = "x-webhook-signature";
const DEFAULT_TOLERANCE_SECONDS = 300;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Why a delivery was refused (`WebhookVerificationError.reason`); the Python SDK uses the same
 * words.
 */
export const VERIFICATION_FAILURES = [
  /** No signature header this call accepts: `webhook-signature` is missing (`X-Webhook-Signature`
   * alone counts only with `allowBodyOnly`). */
  "missing_signature",
  /** `webhook-id` or `webhook-timestamp` is missing (both are signed by `webhook-signature`). */
  "missing_header",
  /** `webhook-timestamp` is not unix seconds. */
  "invalid_timestamp",
  /** `webhook-timestamp` is older than the tolerance: a replay, or a clock out of sync. */
  "timestamp_too_old",
  /** `webhook-timestamp` is ahead by more than the tolerance: a clock out of sync. */
  "timestamp_in_future",
  /** No signature in the header matches this body and key. */
  "bad_signature",
] as const;

/** Why a delivery was refused: one of {@link VERIFICATION_FAILURES}. */
export type VerificationFailure = (typeof VERIFICATION_FAILURES)[number];

/**
 * The delivery cannot be trusted: a header is missing, the timestamp is stale, or no signature
 * matches. Answer it with 400 (or 401) and do not process the body.
 */
export class WebhookVerificationError extends Error {
  /** A stable code for what is wrong; `message` says it in words. */
  readonly reason: VerificationFailure;

  constructor(reason: VerificationFailure, message: string) {
    super(message);
    this.name = "WebhookVerificationError";
    this.reason = reason;
  }
}

/**
 * Request headers: a fetch `Headers` instance, Node's `IncomingHttpHeaders` (`req.headers`), or
 * any plain object; names are matched case-insensitively.
 */
export type HeadersLike =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Options of {@link verify}. */
export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from `now`, either way, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** The current time, as a `Date` or milliseconds since the epoch (tests); default the clock. */
  now?: Date | number;
  /**
   * Also accept a delivery that has only `X-Webhook-Signature`. That signature covers no
   * timestamp, so a captured delivery can be replayed at any time: enable it only where the
   * `webhook-*` headers cannot reach you (a proxy that drops them), and then drop repeated event
   * ids (the body's signed `id`) for as long as a replay matters. `webhook-signature` still
   * decides when present. Default false.
   */
  allowBodyOnly?: boolean;
}

/**
 * Check the signature of one delivery; throws {@link WebhookVerificationError} if it is not
 * genuine, returns nothing if it is.
 *
 * @param headers - the request headers (any case; a `Headers` instance or a plain object).
 * @param body - the raw request body exactly as received, before any JSON parsing (a string is
 *   taken as its UTF-8 bytes).
 * @param key - the subscription's secret `whsec_…` as returned when it was created or rotated,
 *   or its public key `whpk_…` when it signs with Ed25519.
 * @param options - timestamp tolerance, the current time, and whether the body-only
 *   `X-Webhook-Signature` is accepted.
 * @throws {@link WebhookVerificationError} with a `reason` and a message saying what is wrong.
 * @throws `TypeError` when the key itself is malformed (a configuration error, not a bad
 *   request).
 *
 * @example
 * ```ts
 * verify(req.headers, rawBody, process.env.WEBHOOK_SECRET!); // throws unless genuine
 * ```
 */
export function verify(
  headers: HeadersLike,
  body: string | Uint8Array,
  key: string,
  options: VerifyOptions = {},
): void {
  const checker = signatureChecker(key);
  const values = headerValues(headers);
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const standard = values.get(STANDARD_HEADER);
  const overview = values.get(OVERVIEW_HEADER);
  if (standard !== undefined) {
    verifyStandard(values, standard, payload, checker, options);
  } else if (overview !== undefined && options.allowBodyOnly === true) {
    if (checker.kind !== "v1") {
      throw new WebhookVerificationError(
        "missing_signature",
        "missing header webhook-signature: X-Webhook-Signature is an HMAC of the shared " +
          "secret, which a public key cannot check",
      );
    }
    verifyOverview(overview, payload, key);
  } else if (overview !== undefined) {
    throw new WebhookVerificationError(
      "missing_signature",
      "missing header webhook-signature: X-Webhook-Signature alone covers no timestamp, so a " +
        "replayed delivery would pass; it is accepted only with { allowBodyOnly: true }",
    );
  } else {
    throw new WebhookVerificationError(
      "missing_signature",
      "missing signature header: expected webhook-signature",
    );
  }
}

function headerValues(headers: HeadersLike): Map<string, string[]> {
  const values = new Map<string, string[]>();
  const add = (name: string, value: string | readonly string[] | undefined): void => {
    if (value === undefined) return;
    const key = name.toLowerCase();
    const list = values.get(key) ?? [];
    list.push(...(typeof value === "string" ? [value] : value));
    values.set(key, list);
  };
  if (typeof Headers !== "undefined" && headers instanceof Headers) {
    headers.forEach((value, name) => add(name, value));
  } else {
    for (const [name, value] of Object.entries(headers)) add(name, value);
  }
  return values;
}

/** Checks the signatures of one kind (`v1` or `v1a`) against a signed message. */
interface SignatureChecker {
  readonly kind: "v1" | "v1a";
  matches(message: Buffer, signatures: string[]): boolean;
}

function decodeBase64(encoded: string): Buffer | undefined {
  // Buffer.from(…, "base64") never fails: check the form first.
  return encoded.length > 0 && BASE64.test(encoded) ? Buffer.from(encoded, "base64") : undefined;
}

function signatureChecker(key: string): SignatureChecker {
  if (key.startsWith(PUBLIC_KEY_PREFIX)) return ed25519Checker(key);
  if (key.startsWith(PRIVATE_KEY_PREFIX)) {
    throw new TypeError(
      `this is an Ed25519 private key ('${PRIVATE_KEY_PREFIX}'): verify with the subscription's ` +
        `public key ('${PUBLIC_KEY_PREFIX}'), and keep the private one secret`,
    );
  }
  return hmacChecker(key);
}

function hmacChecker(secret: string): SignatureChecker {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const hmacKey = decodeBase64(encoded);
  // A mangled secret is reported as such rather than as a bad signature of every delivery.
  if (hmacKey === undefined) {
    throw new TypeError(`the secret must be '${SECRET_PREFIX}' followed by base64, as issued`);
  }
  return {
    kind: "v1",
    matches(message, signatures) {
      const digest = createHmac("sha256", hmacKey).update(message).digest("base64");
      return anyEqual(`v1,${digest}`, signatures);
    },
  };
}

function ed25519Checker(publicKey: string): SignatureChecker {
  const raw = decodeBase64(publicKey.slice(PUBLIC_KEY_PREFIX.length));
  if (raw === undefined || raw.length !== 32) {
    throw new TypeError(
      `the public key must be '${PUBLIC_KEY_PREFIX}' followed by base64 of 32 bytes, as issued`,
    );
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
      format: "jwk",
    });
  } catch {
    throw new TypeError(`the public key is not an Ed25519 public key ('${PUBLIC_KEY_PREFIX}…')`);
  }
  return {
    kind: "v1a",
    matches(message, signatures) {
      return signatures.some((candidate) => {
        if (!candidate.startsWith("v1a,")) return false;
        const signature = decodeBase64(candidate.slice(4));
        // Ed25519 is given no digest algorithm (null): it hashes the message itself.
        return signature !== undefined && verifySignature(null, message, keyObject, signature);
      });
    },
  };
}

function single(values: Map<string, string[]>, name: string): string {
  const value = values.get(name)?.[0]?.trim();
  if (!value) {
    throw new WebhookVerificationError(
      "missing_header",
      `missing header ${name} (needed to check ${STANDARD_HEADER})`,
    );
  }
  return value;
}

function verifyStandard(
  values: Map<string, string[]>,
  headerValues: string[],
  body: Buffer,
  checker: SignatureChecker,
  options: VerifyOptions,
): void {
  const msgId = single(values, "webhook-id");
  const rawTimestamp = single(values, "webhook-timestamp");
  if (!/^\d{1,15}$/.test(rawTimestamp)) {
    throw new WebhookVerificationError(
      "invalid_timestamp",
      `webhook-timestamp is not unix seconds: ${JSON.stringify(rawTimestamp.slice(0, 40))}`,
    );
  }
  const timestamp = Number(rawTimestamp);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowMs = options.now === undefined ? Date.now() : Number(options.now);
  const age = Math.floor(nowMs / 1000) - timestamp;
  if (age > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_too_old",
      `webhook-timestamp is too old: ${age}s ago, tolerance ${tolerance}s ` +
        "(a replay, or a clock out of sync)",
    );
  }
  if (-age > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_in_future",
      `webhook-timestamp is in the future: ${-age}s ahead, tolerance ${tolerance}s ` +
        "(a clock out of sync)",
    );
  }
  const message = Buffer.concat([Buffer.from(`${msgId}.${rawTimestamp}.`, "utf8"), body]);
  if (!checker.matches(message, splitSignatures(headerValues))) {
    throw new WebhookVerificationError(
      "bad_signature",
      `bad signature: no ${checker.kind} signature in webhook-signature matches this body and key`,
    );
  }
}

function verifyOverview(headerValues: string[], body: Buffer, secret: string): void {
  const digest = createHmac("sha256", Buffer.from(secret, "utf8")).update(body).digest("hex");
  if (!anyEqual(`sha256=${digest}`, splitSignatures(headerValues))) {
    throw new WebhookVerificationError(
      "bad_signature",
      "bad signature: no sha256 signature in X-Webhook-Signature matches this body and secret",
    );
  }
}

function splitSignatures(headerValues: string[]): string[] {
  return headerValues.flatMap((value) => value.split(/\s+/).filter((part) => part.length > 0));
}

function anyEqual(expected: string, candidates: string[]): boolean {
  const wanted = Buffer.from(expected, "utf8");
  // Every candidate is compared, so the time taken does not reveal which one matched.
  let matched = false;
  for (const candidate of candidates) {
    const given = Buffer.from(candidate, "utf8");
    // timingSafeEqual needs equal lengths; the length of a signature is no secret.
    if (given.length === wanted.length && timingSafeEqual(given, wanted)) matched = true;
  }
  return matched;
}
