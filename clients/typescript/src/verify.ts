/**
 * Verify that an HTTP delivery really comes from webhook-grpc (for the receiving endpoint).
 *
 * Every delivery carries two signatures of the same body; either one proves it:
 *
 * - `webhook-signature` (Standard Webhooks): `v1,` + base64 HMAC-SHA256 over
 *   `${webhook-id}.${webhook-timestamp}.${body}`, keyed with the base64-decoded part of the secret
 *   after `whsec_`. It covers the timestamp, so a replayed old delivery is refused.
 * - `X-Webhook-Signature`: `sha256=` + hex HMAC-SHA256 of the raw body, keyed with the secret
 *   string exactly as issued (UTF-8). It does not cover a timestamp.
 *
 * During a secret rotation either header may hold several space-separated signatures; one match
 * is enough.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const SECRET_PREFIX = "whsec_";
const STANDARD_HEADER = "webhook-signature";
const OVERVIEW_HEADER = "x-webhook-signature";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why a delivery was refused (`WebhookVerificationError.reason`). */
export type VerificationFailure =
  /** Neither `webhook-signature` nor `X-Webhook-Signature` is present (or the one required). */
  | "missing_signature"
  /** `webhook-id` or `webhook-timestamp` is missing (both are signed by `webhook-signature`). */
  | "missing_header"
  /** `webhook-timestamp` is not unix seconds. */
  | "invalid_timestamp"
  /** `webhook-timestamp` is older than the tolerance: a replay, or a clock out of sync. */
  | "timestamp_too_old"
  /** `webhook-timestamp` is ahead by more than the tolerance: a clock out of sync. */
  | "timestamp_in_future"
  /** No signature in the header matches this body and secret. */
  | "bad_signature";

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
   * Which signature decides. `"auto"` (the default): `webhook-signature` when present (it also
   * protects against replays), otherwise `X-Webhook-Signature`. Name one header to require it.
   */
  scheme?: "auto" | "webhook-signature" | "x-webhook-signature";
}

/**
 * Check the signature of one delivery; throws {@link WebhookVerificationError} if it is not
 * genuine, returns nothing if it is.
 *
 * @param headers - the request headers (any case; a `Headers` instance or a plain object).
 * @param body - the raw request body exactly as received, before any JSON parsing (a string is
 *   taken as its UTF-8 bytes).
 * @param secret - the subscription's secret, `whsec_...`, as returned when it was created or
 *   rotated.
 * @param options - timestamp tolerance, the current time, and which signature to require.
 * @throws {@link WebhookVerificationError} with a `reason` and a message saying what is wrong.
 * @throws `TypeError` when the secret itself is malformed (a configuration error, not a bad
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
  secret: string,
  options: VerifyOptions = {},
): void {
  const values = headerValues(headers);
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const scheme = options.scheme ?? "auto";
  const standard = values.get(STANDARD_HEADER);
  const overview = values.get(OVERVIEW_HEADER);
  if (scheme !== "x-webhook-signature" && standard !== undefined) {
    verifyStandard(values, standard, payload, secret, options);
  } else if (scheme !== "webhook-signature" && overview !== undefined) {
    verifyOverview(overview, payload, secret);
  } else {
    const expected =
      scheme === "auto" ? "webhook-signature or X-Webhook-Signature" : headerName(scheme);
    throw new WebhookVerificationError(
      "missing_signature",
      `missing signature header: expected ${expected}`,
    );
  }
}

function headerName(scheme: "webhook-signature" | "x-webhook-signature"): string {
  return scheme === "webhook-signature" ? "webhook-signature" : "X-Webhook-Signature";
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

function standardKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  // Buffer.from(…, "base64") never fails: check the form first, so a mangled secret is reported
  // as such rather than as a bad signature of every delivery.
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new TypeError(`the secret must be '${SECRET_PREFIX}' followed by base64, as issued`);
  }
  return Buffer.from(encoded, "base64");
}

function verifyStandard(
  values: Map<string, string[]>,
  signatures: string[],
  body: Buffer,
  secret: string,
  options: VerifyOptions,
): void {
  const key = standardKey(secret);
  const msgId = single(values, "webhook-id");
  const rawTimestamp = single(values, "webhook-timestamp");
  if (!/^\d{1,15}$/.test(rawTimestamp)) {
    throw new WebhookVerificationError(
      "invalid_timestamp",
      `webhook-timestamp is not unix seconds: ${JSON.stringify(rawTimestamp.slice(0, 40))}`,
    );
  }
  const timestamp = Number(rawTimestamp);
  const tolerance = options.toleranceSeconds ?? 300;
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
  const digest = createHmac("sha256", key)
    .update(`${msgId}.${rawTimestamp}.`, "utf8")
    .update(body)
    .digest("base64");
  if (!anyMatches(`v1,${digest}`, signatures)) {
    throw new WebhookVerificationError(
      "bad_signature",
      "bad signature: no v1 signature in webhook-signature matches this body and secret",
    );
  }
}

function verifyOverview(signatures: string[], body: Buffer, secret: string): void {
  const digest = createHmac("sha256", Buffer.from(secret, "utf8")).update(body).digest("hex");
  if (!anyMatches(`sha256=${digest}`, signatures)) {
    throw new WebhookVerificationError(
      "bad_signature",
      "bad signature: no sha256 signature in X-Webhook-Signature matches this body and secret",
    );
  }
}

function anyMatches(expected: string, headerValues: string[]): boolean {
  const wanted = Buffer.from(expected, "utf8");
  // Every candidate is compared, so the time taken does not reveal which one matched.
  let matched = false;
  for (const value of headerValues) {
    for (const candidate of value.split(" ")) {
      const given = Buffer.from(candidate.trim(), "utf8");
      // timingSafeEqual needs equal lengths; the length of a signature is no secret.
      if (given.length === wanted.length && timingSafeEqual(given, wanted)) {
        matched = true;
      }
    }
  }
  return matched;
}
