// The fields of an endpoint's form, shared by "Add an endpoint" and the endpoint's settings:
// what it receives and how (patterns, payload, the delivery controls of SPEC §11), and, when
// adding one, its URL and signing algorithm. The server checks every rule; its refusals
// (google.rpc.BadRequest field violations) are shown next to the field they name.
import { announce, h } from "../dom.js";

export const PAYLOAD_MODES = [
  ["PAYLOAD_MODE_FULL", "Full: the entity's shareable fields"],
  ["PAYLOAD_MODE_THIN", "Thin: only the entity id (fetch the rest yourself)"],
];
export const SIGNING_ALGORITHMS = [
  ["SIGNING_ALGORITHM_HMAC_SHA256", "HMAC-SHA256 with a shared secret (default)"],
  ["SIGNING_ALGORITHM_ED25519", "Ed25519: verify webhook-signature with a public key"],
];
const FIFO = "ORDERING_FIFO";
const UNORDERED = "ORDERING_UNORDERED";

// One labelled field: its hint and its error are read out with it (aria-describedby).
function field(id, label, control, hint) {
  const error = h("p", { id: `${id}-error`, className: "field-error", hidden: true });
  const hintText = hint ? h("p", { id: `${id}-hint`, className: "hint" }, hint) : null;
  control.setAttribute("aria-describedby", [hint ? `${id}-hint` : "", `${id}-error`].join(" ").trim());
  return { error, control, node: h("div", { className: "field" }, h("label", { for: id }, label), hintText, control, error) };
}

// The custom headers: one row (name, value, remove) per header, and a button to add one.
function headersEditor() {
  const rows = h("div", { className: "header-rows" });
  const error = h("p", { id: "headers-error", className: "field-error", hidden: true });
  let next = 0;

  function add(name = "", value = "") {
    const n = ++next;
    const nameField = h("input", { id: `header-name-${n}`, className: "header-name", autocomplete: "off", spellcheck: "false", "aria-describedby": "headers-error" });
    const valueField = h("input", { id: `header-value-${n}`, className: "header-value", autocomplete: "off", spellcheck: "false", "aria-describedby": "headers-error" });
    nameField.value = name;
    valueField.value = value;
    const row = h(
      "div",
      { className: "header-row" },
      h("label", { for: `header-name-${n}` }, "Name"),
      nameField,
      h("label", { for: `header-value-${n}` }, "Value"),
      valueField,
    );
    row.append(
      h("button", {
        type: "button",
        className: "remove",
        "aria-label": `Remove header ${name || n}`,
        onclick: () => {
          const following = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          (following?.querySelector("input") || addButton).focus();
        },
      }, "Remove"),
    );
    nameField.addEventListener("input", () => {
      row.querySelector("button.remove").setAttribute("aria-label", `Remove header ${nameField.value || n}`);
    });
    rows.append(row);
    return nameField;
  }

  const addButton = h("button", { type: "button", onclick: () => add().focus() }, "Add header");
  const node = h(
    "fieldset",
    { id: "headers", className: "headers" },
    h("legend", {}, "Custom headers"),
    h("p", { className: "hint" }, "Sent with every delivery (up to 10). Signature, webhook-*, Content-Type, Host and hop-by-hop headers are refused."),
    rows,
    addButton,
    error,
  );

  return {
    node,
    error,
    fill(headers) {
      rows.replaceChildren();
      for (const [name, value] of Object.entries(headers || {})) add(name, value);
    },
    read() {
      const headers = {};
      for (const row of rows.children) {
        const name = row.querySelector(".header-name").value.trim();
        const value = row.querySelector(".header-value").value;
        if (name || value) headers[name] = value;
      }
      return headers;
    },
    // The row of the header an error names (headers["X-Name"]), or the first row.
    mark(name) {
      const inputs = [...rows.querySelectorAll(".header-name")];
      const named = inputs.find((input) => input.value.trim().toLowerCase() === (name || "").toLowerCase());
      const target = named || inputs[0] || addButton;
      if (target.tagName === "INPUT") target.setAttribute("aria-invalid", "true");
      return target;
    },
    clear() {
      for (const input of rows.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    },
  };
}

// A filter error reads "line L, column C: why": put the caret there.
function caretAt(textarea, message) {
  const found = /line (\d+), column (\d+)/.exec(message);
  if (!found) return;
  const lines = textarea.value.split("\n");
  const line = Math.min(Number(found[1]), lines.length);
  const offset = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0) + Number(found[2]) - 1;
  textarea.setSelectionRange(offset, Math.min(offset + 1, textarea.value.length));
}

export function subscriptionForm({ adding = false } = {}) {
  const fields = {};
  if (adding) {
    fields.url = field("url", "Endpoint URL", h("input", { id: "url", name: "url", type: "url", required: true, size: 50, placeholder: "https://example.com/webhooks" }));
    fields.description = field("description", "Description (optional)", h("input", { id: "description", name: "description", size: 50 }));
  }
  fields.event_patterns = field(
    "patterns",
    "Event patterns",
    h("textarea", { id: "patterns", name: "patterns", rows: 3, required: true }),
    "One per line: a type (product.created), entity.* or *.",
  );
  fields.payload_mode = field(
    "payload-mode",
    "Payload",
    h("select", { id: "payload-mode", name: "payload_mode" }, PAYLOAD_MODES.map(([value, label]) => h("option", { value }, label))),
  );
  if (adding) {
    fields.signing_algorithm = field(
      "signing-algorithm",
      "Signing",
      h("select", { id: "signing-algorithm", name: "signing_algorithm" }, SIGNING_ALGORITHMS.map(([value, label]) => h("option", { value }, label))),
      "Cannot be changed later.",
    );
  }
  fields.filter = field(
    "filter",
    "Filter (optional)",
    h("textarea", { id: "filter", name: "filter", rows: 2, spellcheck: "false", className: "code" }),
    'A CEL expression over type, entity_id, data and previous, e.g. type == "product.price_changed" && double(data.selling_price) > 100.0. Only events it matches are delivered; empty: all.',
  );
  const headers = headersEditor();
  fields.ordering = field(
    "fifo",
    "Deliver in order (FIFO)",
    h("input", { id: "fifo", name: "fifo", type: "checkbox" }),
    "One delivery at a time, in feed order: a failing delivery holds the ones behind it through its retries.",
  );
  fields.ordering.node.classList.add("check-field");
  fields.rate_limit_per_second = field(
    "rate-limit",
    "Rate limit (attempts per second)",
    h("input", { id: "rate-limit", name: "rate_limit_per_second", type: "number", min: 0, step: 1, inputmode: "numeric" }),
    "Over every dispatcher together. Empty or 0: no limit.",
  );

  const controls = h(
    "fieldset",
    { className: "controls" },
    h("legend", {}, "Delivery controls"),
    fields.filter.node,
    headers.node,
    fields.ordering.node,
    fields.rate_limit_per_second.node,
  );
  const base = Object.entries(fields)
    .filter(([name]) => !["filter", "ordering", "rate_limit_per_second"].includes(name))
    .map(([, f]) => f.node);

  function clearErrors() {
    for (const f of [...Object.values(fields), headers]) {
      f.error.hidden = true;
      f.error.textContent = "";
      f.control?.removeAttribute("aria-invalid");
    }
    headers.clear();
  }

  // Shows the server's field violations next to their fields and focuses the first; false
  // when the error names no field of this form.
  function showErrors(error) {
    clearErrors();
    let first = null;
    for (const { field: path, description } of error.violations || []) {
      const name = path.replace(/^subscription\./, "");
      const header = /^headers\["(.*)"\]$/.exec(name);
      const key = header ? "headers" : name.split(/[.[]/)[0];
      const target = key === "headers" ? headers : fields[key];
      if (!target) continue;
      target.error.textContent = header ? `${header[1]}: ${description}` : description;
      target.error.hidden = false;
      const control = key === "headers" ? headers.mark(header?.[1]) : target.control;
      if (key !== "headers") control.setAttribute("aria-invalid", "true");
      if (key === "filter") caretAt(control, description);
      first = first || control;
    }
    if (first) first.focus();
    return first !== null;
  }

  const form = {
    fill(subscription) {
      fields.event_patterns.control.value = (subscription.event_patterns || []).join("\n");
      fields.payload_mode.control.value = subscription.payload_mode || "PAYLOAD_MODE_FULL";
      fields.filter.control.value = subscription.filter || "";
      headers.fill(subscription.headers);
      fields.ordering.control.checked = subscription.ordering === FIFO;
      const rate = subscription.rate_limit_per_second || 0;
      fields.rate_limit_per_second.control.value = rate ? String(rate) : "";
    },
    read() {
      const rate = fields.rate_limit_per_second.control.value.trim();
      const filter = fields.filter.control.value;
      const values = {
        event_patterns: fields.event_patterns.control.value.split(/[\s,]+/).filter(Boolean),
        payload_mode: fields.payload_mode.control.value,
        filter: filter.trim() ? filter : "",
        headers: headers.read(),
        ordering: fields.ordering.control.checked ? FIFO : UNORDERED,
        rate_limit_per_second: rate ? Number(rate) : 0,
      };
      if (adding) {
        values.url = fields.url.control.value.trim();
        values.description = fields.description.control.value;
        values.signing_algorithm = fields.signing_algorithm.control.value;
      }
      return values;
    },
  };

  // The form element, `heading` first: on submit it calls `save(values)`; a refusal is shown
  // by the fields it names (`refused` is announced), any other failure announced as it is.
  form.element = (heading, button, save, refused) =>
    h(
      "form",
      {
        className: "edit",
        onsubmit: async (event) => {
          event.preventDefault();
          clearErrors();
          try {
            await save(form.read());
          } catch (error) {
            announce(showErrors(error) ? refused : error.message, "error");
          }
        },
      },
      heading,
      base,
      controls,
      h("button", { type: "submit" }, button),
    );
  return form;
}

// A new secret (shown only this once) and the public key, as read-only fields to copy.
export function keyFields({ secret, subscription }, prefix) {
  const nodes = [];
  if (secret) {
    nodes.push(
      h("label", { for: `${prefix}-secret` }, "Secret (shown only now: store it in your receiver)"),
      h("input", { id: `${prefix}-secret`, readonly: true, value: secret, size: 50, className: "key" }),
    );
  }
  if (subscription?.public_key) {
    nodes.push(
      h("label", { for: `${prefix}-public-key` }, "Public key (your receiver verifies signatures with it)"),
      h("input", { id: `${prefix}-public-key`, readonly: true, value: subscription.public_key, size: 50, className: "key" }),
    );
  }
  return nodes;
}
