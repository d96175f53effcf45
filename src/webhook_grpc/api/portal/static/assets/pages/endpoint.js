// One endpoint: its settings and health, and what can be done with it.
import { api } from "../api.js";
import { announce, attemptSummary, enumWord, h, hours, statusBadge, successRate, time } from "../dom.js";

const PAYLOAD_MODES = [
  ["PAYLOAD_MODE_FULL", "Full: the entity's shareable fields"],
  ["PAYLOAD_MODE_THIN", "Thin: only the entity id (fetch the rest yourself)"],
];

export async function endpointPage({ params: [id] }) {
  const { subscription } = await api.subscription(id);
  const summary = h("dl", { className: "facts" });
  const secretBox = h("div", { className: "secret-box", hidden: true });
  const actions = h("div", { className: "actions" });
  const patterns = h("textarea", { id: "patterns", name: "patterns", rows: 3, required: true });
  const payloadMode = h(
    "select",
    { id: "payload-mode", name: "payload_mode" },
    PAYLOAD_MODES.map(([value, label]) => h("option", { value }, label)),
  );
  let current = subscription;

  function show(updated) {
    current = updated;
    summary.replaceChildren(...facts(updated));
    patterns.value = updated.event_patterns.join("\n");
    payloadMode.value = updated.payload_mode;
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
    secretBox.hidden = false;
    const field = h("input", { id: "new-secret", readonly: true, value: result.secret, size: 50 });
    secretBox.replaceChildren(
      h("h2", {}, "New signing secret"),
      h("label", { for: "new-secret" }, "Secret (shown only now: store it in your receiver)"),
      field,
      h(
        "p",
        { className: "muted" },
        `Until ${time(result.subscription.previous_secret_expires_at)} deliveries carry signatures for the new and the old secret.`,
      ),
      h("button", { type: "button", onclick: () => secretBox.replaceChildren() || (secretBox.hidden = true) }, "Done, hide it"),
    );
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

  const form = h(
    "form",
    {
      className: "edit",
      onsubmit: (event) => {
        event.preventDefault();
        const list = patterns.value.split(/[\s,]+/).filter(Boolean);
        act(() => api.update(id, { event_patterns: list, payload_mode: payloadMode.value }), () => "Saved.");
      },
    },
    h("h2", {}, "Settings"),
    h("label", { for: "patterns" }, "Event patterns (one per line: a type, entity.* or *)"),
    patterns,
    h("label", { for: "payload-mode" }, "Payload"),
    payloadMode,
    h("button", { type: "submit" }, "Save"),
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
    ["Description", subscription.description || "—"],
    ["Created", time(subscription.created_at)],
  ];
  return rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
}
