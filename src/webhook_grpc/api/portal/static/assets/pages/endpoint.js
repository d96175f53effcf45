// One endpoint: its settings and health, and what can be done with it.
import { api } from "../api.js";
import { announce, attemptSummary, enumWord, h, hours, statusBadge, successRate, time } from "../dom.js";
import { keyFields, subscriptionForm } from "./subscription-form.js";

export async function endpointPage({ params: [id] }) {
  const { subscription } = await api.subscription(id);
  const summary = h("dl", { className: "facts" });
  const secretBox = h("div", { className: "secret-box", hidden: true });
  const actions = h("div", { className: "actions" });
  const settings = subscriptionForm();
  let current = subscription;

  function show(updated) {
    current = updated;
    summary.replaceChildren(...facts(updated));
    settings.fill(updated);
    actions.replaceChildren(...buttons(updated));
  }

  async function act(run, done) {
    try {
      const result = await run();
      if (result?.subscription) show(result.subscription);
      announce(done(result), "success");
    } catch (error) {
      announce(error.message, "error");
    }
  }

  function buttons(subscription) {
    const active = subscription.status === "SUBSCRIPTION_STATUS_ACTIVE";
    const toggle = active
      ? h("button", { type: "button", onclick: () => act(() => api.disable(id), () => "Endpoint disabled.") }, "Disable")
      : h("button", { type: "button", onclick: () => act(() => api.activate(id), () => "Endpoint activated.") }, "Activate");
    return [
      h("button", {
        type: "button",
        onclick: () => act(() => api.test(id), (r) => `Test event sent (delivery ${r.delivery_id}).`),
      }, "Send test event"),
      h("button", { type: "button", onclick: () => act(rotate, () => "Secret rotated.") }, "Rotate secret"),
      toggle,
      h("button", { type: "button", className: "danger", onclick: confirmDelete }, "Delete…"),
    ];
  }

  async function rotate() {
    const result = await api.rotate(id);
    const keyPair = Boolean(result.subscription.public_key);
    const what = keyPair ? "secret and key" : "secret";
    secretBox.hidden = false;
    secretBox.replaceChildren(
      h("h2", {}, keyPair ? "New signing secret and key pair" : "New signing secret"),
      ...keyFields(result, "new"),
      h(
        "p",
        { className: "muted" },
        `Until ${time(result.subscription.previous_secret_expires_at)} deliveries carry signatures for the new and the old ${what}.`,
      ),
      h("button", { type: "button", onclick: () => secretBox.replaceChildren() || (secretBox.hidden = true) }, "Done, hide it"),
    );
    const field = secretBox.querySelector("input");
    field.focus();
    field.select();
    return result;
  }

  function confirmDelete() {
    const cancel = h("button", { type: "button", onclick: () => actions.replaceChildren(...buttons(current)) }, "Cancel");
    const confirm = h("button", {
      type: "button",
      className: "danger",
      onclick: async () => {
        try {
          await api.remove(id);
          location.hash = "#/endpoints";
          announce("Endpoint deleted.", "success");
        } catch (error) {
          announce(error.message, "error");
        }
      },
    }, "Yes, delete this endpoint");
    actions.replaceChildren(
      h("p", { role: "alert" }, "Delete this endpoint? Its pending deliveries are cancelled. This cannot be undone."),
      confirm,
      cancel,
    );
    cancel.focus();
  }

  const form = settings.element(
    h("h2", {}, "Settings"),
    "Save",
    async (values) => {
      show((await api.update(id, values)).subscription);
      announce("Saved.", "success");
    },
    "Not saved: see the marked field.",
  );

  show(subscription);
  return [
    h("p", {}, h("a", { href: "#/endpoints" }, "← Endpoints")),
    h("h1", {}, subscription.url),
    summary,
    h("p", {}, h("a", { href: `#/endpoints/${encodeURIComponent(id)}/deliveries`, className: "button-link" }, "Delivery log")),
    actions,
    secretBox,
    form,
  ];
}

function facts(subscription) {
  const health = subscription.health || {};
  const reason = enumWord(subscription.disabled_reason, "DISABLED_REASON_");
  const rows = [
    ["Id", h("code", {}, subscription.id)],
    ["Status", [statusBadge(enumWord(subscription.status, "SUBSCRIPTION_STATUS_")), reason ? ` (${reason})` : ""]],
    [`Success rate (${hours(health.failure_window)})`, successRate(health)],
    ["Last attempt", attemptSummary(health.last_attempt)],
    ["Event patterns", subscription.event_patterns.join(", ")],
    ["Payload", enumWord(subscription.payload_mode, "PAYLOAD_MODE_")],
    ["Filter", subscription.filter ? h("code", { className: "filter" }, subscription.filter) : "none: every event the patterns match"],
    ["Custom headers", customHeaders(subscription.headers)],
    ["Ordering", subscription.ordering === "ORDERING_FIFO" ? "FIFO: one at a time, in feed order" : "unordered (concurrent)"],
    ["Rate limit", subscription.rate_limit_per_second ? `${subscription.rate_limit_per_second} attempts per second` : "none"],
    ["Signing", signing(subscription.signing_algorithm)],
    subscription.public_key ? ["Public key", h("code", { id: "public-key" }, subscription.public_key)] : null,
    ["Description", subscription.description || "—"],
    ["Created", time(subscription.created_at)],
  ];
  return rows.filter(Boolean).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
}

function customHeaders(headers) {
  const entries = Object.entries(headers || {});
  if (entries.length === 0) return "none";
  return h("ul", { className: "plain headers-list" }, entries.map(([name, value]) => h("li", {}, h("code", {}, `${name}: ${value}`))));
}

function signing(algorithm) {
  return algorithm === "SIGNING_ALGORITHM_ED25519"
    ? "Ed25519 (webhook-signature: verify with the public key; X-Webhook-Signature: HMAC with the secret)"
    : "HMAC-SHA256 (shared secret)";
}
