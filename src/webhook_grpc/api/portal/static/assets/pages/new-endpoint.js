// Adding an endpoint: where to deliver, what, how it is signed, and its delivery controls.
import { api } from "../api.js";
import { announce, h } from "../dom.js";
import { keyFields, subscriptionForm } from "./subscription-form.js";

export async function newEndpointPage() {
  const fields = subscriptionForm({ adding: true });
  const created = h("section", { className: "secret-box", hidden: true, "aria-labelledby": "created-heading" });
  const form = fields.element(null, "Add endpoint", async (values) => showCreated(await api.create(values)), "Not added: see the marked field.");
  fields.fill({ event_patterns: ["*"] });

  function showCreated(result) {
    const { subscription } = result;
    form.hidden = true;
    created.hidden = false;
    created.replaceChildren(
      h("h2", { id: "created-heading", tabindex: "-1" }, "Endpoint added"),
      h("p", {}, subscription.url),
      ...keyFields(result, "created"),
      h("p", {}, h("a", { href: `#/endpoints/${encodeURIComponent(subscription.id)}`, className: "button-link" }, "Open the endpoint")),
    );
    created.querySelector("h2").focus();
    announce("Endpoint added.", "success");
  }

  return [
    h("p", {}, h("a", { href: "#/endpoints" }, "← Endpoints")),
    h("h1", {}, "Add an endpoint"),
    form,
    created,
  ];
}
