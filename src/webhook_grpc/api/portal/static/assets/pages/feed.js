// The feed: the latest events, filtered by type pattern or entity.
import { api } from "../api.js";
import { h, time } from "../dom.js";

const SHOWN = 50;
const PAGE = 1000;
// Reading the feed from its start to find its end; beyond this many pages, show what was read.
const MAX_PAGES = 20;

export async function feedPage({ query }) {
  const pattern = query.get("type") || "";
  const entity = query.get("entity") || "";
  const latest = [];
  let cursor = "";
  for (let page = 0; page < MAX_PAGES; page++) {
    const reply = await api.events({ after_cursor: cursor, page_size: PAGE, event_patterns: pattern || undefined, entity_id: entity });
    latest.push(...(reply.events || []));
    latest.splice(0, Math.max(0, latest.length - SHOWN));
    cursor = reply.next_cursor || cursor;
    if (!reply.has_more) break;
  }
  latest.reverse();
  const typeField = h("input", { id: "feed-type", name: "type", value: pattern, placeholder: "product.* or product.created" });
  const entityField = h("input", { id: "feed-entity", name: "entity", value: entity, placeholder: "prod_1" });
  const form = h(
    "form",
    {
      className: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        const search = new URLSearchParams();
        if (typeField.value.trim()) search.set("type", typeField.value.trim());
        if (entityField.value.trim()) search.set("entity", entityField.value.trim());
        const text = search.toString();
        location.hash = `#/feed${text ? `?${text}` : ""}`;
      },
    },
    h("label", { for: "feed-type" }, "Type"),
    typeField,
    h("label", { for: "feed-entity" }, "Entity id"),
    entityField,
    h("button", { type: "submit" }, "Filter"),
  );
  return [
    h("h1", {}, "Feed"),
    h("p", { className: "muted" }, `The latest ${SHOWN} events, newest first.`),
    form,
    latest.length === 0
      ? h("p", {}, "No events.")
      : h("ol", { className: "events", reversed: true }, latest.map(eventItem)),
  ];
}

function eventItem(event) {
  return h(
    "li",
    { className: "event", "data-event-id": event.id },
    h("h2", {}, h("code", {}, event.type), " ", h("span", { className: "muted" }, event.entity_id)),
    h("p", { className: "muted" }, `${event.id} · occurred ${time(event.occurred_at)}`),
    h(
      "details",
      {},
      h("summary", {}, "Payload"),
      h("pre", {}, JSON.stringify({ data: event.data, previous: event.previous }, null, 2)),
    ),
  );
}
