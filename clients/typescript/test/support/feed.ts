import { randomUUID } from "node:crypto";
import type { Event, Feed } from "../../src/index.js";
import { withTimeout } from "./server.js";

/** The next `count` events of `feed`, each within `timeoutMs`. */
export async function nextEvents(feed: Feed, count: number, timeoutMs = 10_000): Promise<Event[]> {
  const events: Event[] = [];
  while (events.length < count) {
    const what = `feed event ${events.length + 1} of ${count}`;
    const result = await withTimeout(feed.next(), timeoutMs, what);
    if (result.done) throw new Error(`the feed ended before ${what}`);
    events.push(result.value);
  }
  return events;
}

/** A tenant of its own for one test. */
export function newTenant(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

/** A product.created event of `tenantId`. */
export function productCreated(tenantId: string, n: number) {
  const id = `prod_${n}`;
  return {
    tenantId,
    type: "product.created",
    entityId: id,
    data: { id, sku: `SKU-${n}`, name: `Product ${n}`, selling_price: "9.90", cost_price: "4.00" },
  };
}
