/**
 * The generated messages, enums and service descriptors of `webhooks.v1` (protoc-gen-es), for
 * code that needs more than the hand-written client: `create(v1.EventSchema, …)`,
 * `createClient(v1.DeliveryService, transport)`…
 *
 * @module
 */
export * from "./gen/webhooks/v1/deliveries_pb.js";
export * from "./gen/webhooks/v1/events_pb.js";
export * from "./gen/webhooks/v1/feed_pb.js";
export * from "./gen/webhooks/v1/subscriptions_pb.js";
