/**
 * Node.js client of webhook-grpc.
 *
 * - {@link WebhooksClient}: publish events (idempotent, retried on `UNAVAILABLE`), manage
 *   subscriptions (`client.subscriptions`), and stream the feed ({@link Feed}, resumes by cursor).
 * - {@link verify}: check the signature of a delivery in the receiving endpoint (timestamped by
 *   default).
 * - `v1`: the generated messages, enums and services of `webhooks.v1`.
 *
 * @packageDocumentation
 */
export { WebhooksClient } from "./client.js";
export type { EventPage, NewEvent, Services, WebhooksClientOptions } from "./client.js";
export type { CallOptions } from "./calls.js";
export { Feed } from "./feed.js";
export type { FeedOptions } from "./feed.js";
export { Subscriptions } from "./subscriptions.js";
export type {
  NewSubscription,
  OrderingName,
  PayloadModeName,
  ReplayOptions,
  SigningAlgorithmName,
  RotateSecretOptions,
  SubscriptionChanges,
  SubscriptionStatusName,
  SubscriptionWithSecret,
  TenantOptions,
  TestDelivery,
} from "./subscriptions.js";
export { DEFAULT_RETRY, FEED_RETRY, isRetryable } from "./retry.js";
export type { RetryPolicy } from "./retry.js";
export { VERIFICATION_FAILURES, verify, WebhookVerificationError } from "./verify.js";
export type { HeadersLike, VerificationFailure, VerifyOptions } from "./verify.js";
export type { Event } from "./gen/webhooks/v1/events_pb.js";
export {
  DisabledReason,
  Ordering,
  PayloadMode,
  SubscriptionStatus,
} from "./gen/webhooks/v1/subscriptions_pb.js";
export type { Subscription } from "./gen/webhooks/v1/subscriptions_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";
export * as v1 from "./v1.js";

/** The version of this package. */
export const VERSION = "0.1.0";
