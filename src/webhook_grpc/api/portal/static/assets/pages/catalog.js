// The event catalog: each type and the fields its webhooks carry (the webhook contract).
import { api } from "../api.js";
import { enumWord, h } from "../dom.js";

const SHARED = new Set(["CLASSIFICATION_PUBLIC", "CLASSIFICATION_INTERNAL"]);

export async function catalogPage() {
  const { event_types: types = [] } = await api.eventTypes();
  return [
    h("h1", {}, "Event catalog"),
    h("p", { className: "muted" }, "Every event type you can subscribe to, and the fields its webhooks carry in data and previous."),
    ...types.map(typeSection),
  ];
}

function typeSection(type) {
  const carried = (type.fields || []).filter((f) => SHARED.has(f.classification));
  const withheld = (type.fields || []).length - carried.length;
  return h(
    "section",
    { className: "event-type", "data-type": type.type },
    h("h2", {}, h("code", {}, type.type)),
    type.description ? h("p", {}, type.description) : null,
    carried.length
      ? h(
          "ul",
          { className: "fields" },
          carried.map((f) => h("li", {}, h("code", {}, f.path), " ", h("span", { className: "muted" }, enumWord(f.classification, "CLASSIFICATION_")))),
        )
      : h("p", { className: "muted" }, type.entity === "webhook" ? "Fields as documented for this built-in type." : "No fields shared yet."),
    withheld ? h("p", { className: "muted" }, `${withheld} confidential or restricted ${withheld === 1 ? "field is" : "fields are"} never sent.`) : null,
  );
}
