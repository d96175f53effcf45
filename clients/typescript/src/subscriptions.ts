/**
 * Subscription management (`client.subscriptions`).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, FieldMaskSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { required, type Caller, type CallOptions } from "./calls.js";
import type { DeliveryService, ReplayEventsResponse } from "./gen/webhooks/v1/deliveries_pb.js";
import type { Event } from "./gen/webhooks/v1/events_pb.js";
import {
  Ordering,
  PayloadMode,
  SigningAlgorithm,
  SubscriptionSchema,
  SubscriptionStatus,
  type SubscriptionService,
  type Subscription,
} from "./gen/webhooks/v1/subscriptions_pb.js";

/** How much of the event a delivery carries: the projected entity, or only its id. */
export type PayloadModeName = "full" | "thin";
/** How deliveries are signed: a shared `whsec_` secret, or an Ed25519 key pair (`whpk_` public key) beside it. */
export type SigningAlgorithmName = "hmac-sha256" | "ed25519";
/** `"fifo"`: one delivery at a time in feed order; a failing one holds those behind it. */
export type OrderingName = "unordered" | "fifo";
/** A subscription's status, as a filter of {@link Subscriptions.list}. */
export type SubscriptionStatusName = "active" | "disabled";

const PAYLOAD_MODES: Record<PayloadModeName, PayloadMode> = {
  full: PayloadMode.FULL,
  thin: PayloadMode.THIN,
};
const SIGNING_ALGORITHMS: Record<SigningAlgorithmName, SigningAlgorithm> = {
  "hmac-sha256": SigningAlgorithm.HMAC_SHA256,
  ed25519: SigningAlgorithm.ED25519,
};
const ORDERINGS: Record<OrderingName, Ordering> = {
  unordered: Ordering.UNORDERED,
  fifo: Ordering.FIFO,
};
const STATUSES: Record<SubscriptionStatusName, SubscriptionStatus> = {
  active: SubscriptionStatus.ACTIVE,
  disabled: SubscriptionStatus.DISABLED,
};

/** Names the tenant; may be left out with a tenant token (its own tenant). */
export interface TenantOptions extends CallOptions {
  tenantId?: string;
}

/** What {@link Subscriptions.create} registers. */
export interface NewSubscription extends TenantOptions {
  /** The endpoint: `https://…` (plain `http://` and private addresses only where configured). */
  url: string;
  /** Exact registered types, `"entity.*"` or `"*"`. */
  eventPatterns: readonly string[];
  description?: string;
  /** Default `"full"`. */
  payloadMode?: PayloadModeName;
  metadata?: Readonly<Record<string, string>>;
  /** `whsec_` + base64 of 24 to 64 bytes; generated when left out. Ed25519 too: it keys `X-Webhook-Signature`. */
  secret?: string;
  /**
   * A CEL expression over the event (`type`, `entity_id`, `data`, `previous`); only events it
   * matches are delivered, e.g. `type == "product.price_changed" && double(data.selling_price) > 100.0`.
   */
  filter?: string;
  /** Up to 10 extra request headers sent with every delivery. */
  headers?: Readonly<Record<string, string>>;
  /**
   * Default `"hmac-sha256"`. With `"ed25519"` the service also generates a key pair: verify
   * `webhook-signature` with `subscription.publicKey` (`whpk_…`); the secret keys `X-Webhook-Signature`.
   */
  signingAlgorithm?: SigningAlgorithmName;
  /** Default `"unordered"`. */
  ordering?: OrderingName;
  /**
   * Attempts per second to the endpoint over every dispatcher together, at most 1,000
   * (INVALID_ARGUMENT above); 0 (default): none.
   */
  rateLimitPerSecond?: number;
}

/** The fields {@link Subscriptions.update} replaces: only those given. */
export interface SubscriptionChanges extends TenantOptions {
  url?: string;
  eventPatterns?: readonly string[];
  description?: string;
  payloadMode?: PayloadModeName;
  metadata?: Readonly<Record<string, string>>;
  /** An empty string removes the filter. */
  filter?: string;
  /** Replaces every custom header. */
  headers?: Readonly<Record<string, string>>;
  ordering?: OrderingName;
  rateLimitPerSecond?: number;
}

/** Options of {@link Subscriptions.replay}: the window of events to replay. */
export interface ReplayOptions extends TenantOptions {
  /** Events published at or after this time (default: the oldest retained). */
  since?: Date;
  /** Events published before this time (default: up to the latest event). */
  until?: Date;
  /** Narrows the subscription's own patterns further. */
  eventPatterns?: readonly string[];
}

/** Options of {@link Subscriptions.rotateSecret}. */
export interface RotateSecretOptions extends TenantOptions {
  /** The new secret; generated when left out. */
  secret?: string;
  /** How long the old secret keeps signing, in milliseconds (server default 24 h; 0 ends it). */
  gracePeriodMs?: number;
}

/** A subscription with its signing secret: the only time the secret is shown. */
export interface SubscriptionWithSecret {
  subscription: Subscription;
  /** Keep it to verify deliveries (`verify`); it is not shown again. */
  secret: string;
}

/** What {@link Subscriptions.sendTest} started. */
export interface TestDelivery {
  /** The `webhook.test` event. */
  event: Event;
  deliveryId: string;
}

/**
 * Manage a tenant's webhook endpoints (`client.subscriptions`).
 *
 * `tenantId` may be left out with a tenant token (its own tenant). Reads, updates and status
 * changes are retried like publishing; creating, deleting, rotating and test sends are sent once
 * (a retry could, for example, rotate a secret twice). Server errors are thrown as `ConnectError`.
 */
export class Subscriptions {
  /** Use `client.subscriptions` rather than this constructor. */
  constructor(
    private readonly service: Client<typeof SubscriptionService>,
    private readonly caller: Caller,
    private readonly deliveries?: Client<typeof DeliveryService>,
  ) {}

  /**
   * Register an endpoint for event patterns. Returns the subscription and its secret: keep the
   * secret to verify deliveries, it is not shown again.
   */
  async create(subscription: NewSubscription): Promise<SubscriptionWithSecret> {
    const response = await this.caller.once(
      (options) =>
        this.service.createSubscription(
          {
            tenantId: subscription.tenantId ?? "",
            url: subscription.url,
            eventPatterns: [...subscription.eventPatterns],
            description: subscription.description ?? "",
            payloadMode: PAYLOAD_MODES[subscription.payloadMode ?? "full"],
            metadata: { ...subscription.metadata },
            secret: subscription.secret ?? "",
            filter: subscription.filter ?? "",
            headers: { ...subscription.headers },
            signingAlgorithm: SIGNING_ALGORITHMS[subscription.signingAlgorithm ?? "hmac-sha256"],
            ordering: ORDERINGS[subscription.ordering ?? "unordered"],
            rateLimitPerSecond: subscription.rateLimitPerSecond ?? 0,
          },
          options,
        ),
      subscription,
    );
    return { subscription: required(response.subscription), secret: response.secret };
  }

  /** One subscription (never its secret); `NOT_FOUND` also for another tenant's id. */
  async get(id: string, options: TenantOptions = {}): Promise<Subscription> {
    const response = await this.caller.retrying(
      (call) => this.service.getSubscription({ tenantId: options.tenantId ?? "", id }, call),
      options,
    );
    return required(response.subscription);
  }

  /** Every subscription of the tenant (all pages), optionally only those in `status`. */
  async list(
    options: TenantOptions & { status?: SubscriptionStatusName } = {},
  ): Promise<Subscription[]> {
    const found: Subscription[] = [];
    let pageToken = "";
    do {
      const response = await this.caller.retrying(
        (call) =>
          this.service.listSubscriptions(
            {
              tenantId: options.tenantId ?? "",
              pageSize: 100,
              pageToken,
              status: options.status ? STATUSES[options.status] : SubscriptionStatus.UNSPECIFIED,
            },
            call,
          ),
        options,
      );
      found.push(...response.subscriptions);
      pageToken = response.nextPageToken;
    } while (pageToken);
    return found;
  }

  /** Replace the fields given, and only those (the update mask names them). */
  async update(id: string, changes: SubscriptionChanges): Promise<Subscription> {
    const subscription = create(SubscriptionSchema, { id, tenantId: changes.tenantId ?? "" });
    const paths: string[] = [];
    if (changes.url !== undefined) {
      subscription.url = changes.url;
      paths.push("url");
    }
    if (changes.eventPatterns !== undefined) {
      subscription.eventPatterns = [...changes.eventPatterns];
      paths.push("event_patterns");
    }
    if (changes.description !== undefined) {
      subscription.description = changes.description;
      paths.push("description");
    }
    if (changes.payloadMode !== undefined) {
      subscription.payloadMode = PAYLOAD_MODES[changes.payloadMode];
      paths.push("payload_mode");
    }
    if (changes.metadata !== undefined) {
      subscription.metadata = { ...changes.metadata };
      paths.push("metadata");
    }
    if (changes.filter !== undefined) {
      subscription.filter = changes.filter;
      paths.push("filter");
    }
    if (changes.headers !== undefined) {
      subscription.headers = { ...changes.headers };
      paths.push("headers");
    }
    if (changes.ordering !== undefined) {
      subscription.ordering = ORDERINGS[changes.ordering];
      paths.push("ordering");
    }
    if (changes.rateLimitPerSecond !== undefined) {
      subscription.rateLimitPerSecond = changes.rateLimitPerSecond;
      paths.push("rate_limit_per_second");
    }
    if (paths.length === 0) {
      throw new TypeError("update needs at least one field to change");
    }
    const updateMask = create(FieldMaskSchema, { paths });
    // Setting the same values again changes nothing: safe to retry.
    const response = await this.caller.retrying(
      (call) => this.service.updateSubscription({ subscription, updateMask }, call),
      changes,
    );
    return required(response.subscription);
  }

  /** Remove the subscription and cancel its pending deliveries. */
  async delete(id: string, options: TenantOptions = {}): Promise<void> {
    await this.caller.once(
      (call) => this.service.deleteSubscription({ tenantId: options.tenantId ?? "", id }, call),
      options,
    );
  }

  /** Resume deliveries, and forget the failures that disabled it. */
  async activate(id: string, options: TenantOptions = {}): Promise<Subscription> {
    // Activating an active subscription is a no-op: safe to retry (as is disabling).
    const response = await this.caller.retrying(
      (call) => this.service.activateSubscription({ tenantId: options.tenantId ?? "", id }, call),
      options,
    );
    return required(response.subscription);
  }

  /** Stop deliveries (reason `MANUAL`); events keep flowing into the feed. */
  async disable(id: string, options: TenantOptions = {}): Promise<Subscription> {
    const response = await this.caller.retrying(
      (call) => this.service.disableSubscription({ tenantId: options.tenantId ?? "", id }, call),
      options,
    );
    return required(response.subscription);
  }

  /**
   * Replace the secret (given, or generated); an Ed25519 subscription also gets a new key pair
   * (`subscription.publicKey`). The old secret (and key) keep signing alongside the new ones
   * for `gracePeriodMs` (server default 24 hours; 0 ends it at once).
   */
  async rotateSecret(
    id: string,
    options: RotateSecretOptions = {},
  ): Promise<SubscriptionWithSecret> {
    const response = await this.caller.once(
      (call) =>
        this.service.rotateSubscriptionSecret(
          {
            tenantId: options.tenantId ?? "",
            id,
            secret: options.secret ?? "",
            ...(options.gracePeriodMs === undefined
              ? {}
              : { gracePeriod: durationFromMs(options.gracePeriodMs) }),
          },
          call,
        ),
      options,
    );
    return { subscription: required(response.subscription), secret: response.secret };
  }

  /** Deliver a `webhook.test` event to this subscription only. */
  async sendTest(id: string, options: TenantOptions = {}): Promise<TestDelivery> {
    const response = await this.caller.once(
      (call) => this.service.sendTestEvent({ tenantId: options.tenantId ?? "", id }, call),
      options,
    );
    return { event: required(response.event), deliveryId: response.deliveryId };
  }

  /**
   * Queue deliveries of stored events in the window that match the subscription (and
   * `eventPatterns`) and were not delivered to it (no delivery that succeeded or is still
   * pending; failed ones are sent again); `queued` says how many. Repeating it queues
   * nothing new, so it is retried like reads. When `hasMore`, call again with
   * `since: timestampDate(response.nextSince)`.
   */
  async replay(id: string, options: ReplayOptions = {}): Promise<ReplayEventsResponse> {
    const deliveries = this.deliveries;
    if (deliveries === undefined) {
      throw new TypeError("this Subscriptions was made without a DeliveryService client");
    }
    return await this.caller.retrying(
      (call) =>
        deliveries.replayEvents(
          {
            tenantId: options.tenantId ?? "",
            subscriptionId: id,
            eventPatterns: [...(options.eventPatterns ?? [])],
            ...(options.since === undefined ? {} : { since: timestampFromDate(options.since) }),
            ...(options.until === undefined ? {} : { until: timestampFromDate(options.until) }),
          },
          call,
        ),
      options,
    );
  }
}
