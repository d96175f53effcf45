// One endpoint's delivery log: every attempt, failed-only filter, retry one, recover since a time.
import { api } from "../api.js";
import { announce, enumWord, h, milliseconds, statusBadge, time } from "../dom.js";

const PAGE_SIZE = 25;
const REFRESH_MS = 1000;

export async function deliveriesPage({ params: [id], query }) {
  const failedOnly = query.get("failed") === "1";
  const { subscription } = await api.subscription(id);
  const list = h("div", { className: "deliveries", "aria-live": "polite" });
  let timer = null;

  async function load() {
    clearTimeout(timer);
    const { deliveries = [] } = await api.deliveries({
      subscription_id: id,
      status: failedOnly ? "DELIVERY_STATUS_FAILED" : undefined,
      page_size: PAGE_SIZE,
    });
    const detailed = await Promise.all(deliveries.map((d) => api.delivery(d.id).then((r) => r.delivery)));
    if (!list.isConnected && list.dataset.loaded) return;
    list.dataset.loaded = "1";
    list.replaceChildren(
      ...(detailed.length ? detailed.map((d) => deliveryCard(d, retry)) : [h("p", {}, failedOnly ? "No failed deliveries." : "No deliveries yet.")]),
    );
    if (detailed.some((d) => d.status === "DELIVERY_STATUS_PENDING")) {
      timer = setTimeout(() => list.isConnected && load().catch(() => {}), REFRESH_MS);
    }
  }

  async function retry(deliveryId) {
    try {
      await api.retry(deliveryId);
      announce("Delivery queued again.", "success");
      await load();
    } catch (error) {
      announce(error.message, "error");
    }
  }

  const filter = h("input", {
    type: "checkbox",
    id: "failed-only",
    checked: failedOnly,
    onchange: (event) => {
      location.hash = `#/endpoints/${encodeURIComponent(id)}/deliveries${event.target.checked ? "?failed=1" : ""}`;
    },
  });
  const since = h("input", { type: "datetime-local", id: "recover-since", required: true, step: 1 });
  const recover = h(
    "form",
    {
      className: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const sinceTime = new Date(since.value).toISOString();
          const { recovered_count = 0 } = await api.recover(id, sinceTime);
          announce(`${recovered_count} failed ${recovered_count === 1 ? "delivery" : "deliveries"} queued again.`, "success");
          await load();
        } catch (error) {
          announce(error.message, "error");
        }
      },
    },
    h("label", { for: "recover-since" }, "Re-send failed deliveries since"),
    since,
    h("button", { type: "submit" }, "Recover"),
  );

  await load();
  return [
    h("p", {}, h("a", { href: `#/endpoints/${encodeURIComponent(id)}` }, `← ${subscription.url}`)),
    h("h1", {}, "Delivery log"),
    h("p", { className: "muted" }, subscription.url),
    h(
      "div",
      { className: "toolbar" },
      h("span", { className: "check" }, filter, h("label", { for: "failed-only" }, "Failed only")),
      h("button", { type: "button", onclick: () => load().catch((e) => announce(e.message, "error")) }, "Refresh"),
      recover,
    ),
    list,
  ];
}

function deliveryCard(delivery, retry) {
  const status = enumWord(delivery.status, "DELIVERY_STATUS_");
  const attempts = delivery.attempts || [];
  return h(
    "article",
    { className: "delivery", "data-delivery-id": delivery.id, "data-status": status },
    h(
      "header",
      {},
      h("h2", {}, delivery.event_type, " ", statusBadge(status)),
      h("p", { className: "muted" }, `Event ${delivery.event_id} · delivery ${delivery.id} · created ${time(delivery.created_at)}`),
      delivery.status === "DELIVERY_STATUS_PENDING"
        ? h("p", { className: "muted" }, `Next attempt ${time(delivery.next_attempt_at)}`)
        : h("button", { type: "button", "aria-label": `Retry delivery ${delivery.id}`, onclick: () => retry(delivery.id) }, "Retry"),
    ),
    attempts.length === 0
      ? h("p", { className: "muted" }, "No attempts yet.")
      : h(
          "div",
          { className: "table-wrap" },
          h(
            "table",
            { className: "attempts" },
            h("caption", { className: "visually-hidden" }, `Attempts of delivery ${delivery.id}`),
            h(
              "thead",
              {},
              h("tr", {}, ["#", "Time", "HTTP status", "Latency", "Error", "Response"].map((t) => h("th", { scope: "col" }, t))),
            ),
            h("tbody", {}, attempts.map(attemptRow)),
          ),
        ),
  );
}

function attemptRow(attempt) {
  const failed = Boolean(attempt.error && !attempt.error.endsWith("_UNSPECIFIED"));
  return h(
    "tr",
    { className: failed ? "failed" : "succeeded" },
    h("td", {}, attempt.attempt_number),
    h("td", {}, time(attempt.attempted_at)),
    h("td", { className: "http-status" }, attempt.status_code || "—"),
    h("td", {}, milliseconds(attempt.latency)),
    h("td", {}, failed ? enumWord(attempt.error, "ATTEMPT_ERROR_") : "ok", attempt.error_message ? h("div", { className: "muted" }, attempt.error_message) : null),
    h("td", {}, attempt.response_body ? h("pre", { className: "excerpt" }, attempt.response_body) : "—"),
  );
}
