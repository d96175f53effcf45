// Endpoints: every subscription of the tenant with its health.
import { api } from "../api.js";
import { attemptSummary, enumWord, h, hours, statusBadge, successRate } from "../dom.js";

export async function endpointsPage() {
  const { subscriptions = [] } = await api.subscriptions();
  const window = subscriptions[0]?.health?.failure_window;
  return [
    h("h1", {}, "Endpoints"),
    h(
      "p",
      { className: "muted" },
      `Where your webhooks go. Success rates count the attempts of the last ${hours(window || "86400s")}.`,
    ),
    h("p", {}, h("a", { href: "#/endpoints/new", className: "button-link" }, "Add endpoint")),
    subscriptions.length === 0
      ? h("p", {}, "No endpoints yet.")
      : h(
          "div",
          { className: "table-wrap" },
          h(
            "table",
            { className: "endpoints" },
            h("caption", { className: "visually-hidden" }, "Endpoints and their health"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Endpoint", "Status", "Success rate", "Last attempt"].map((title) =>
                  h("th", { scope: "col" }, title),
                ),
              ),
            ),
            h("tbody", {}, subscriptions.map(endpointRow)),
          ),
        ),
  ];
}

function endpointRow(subscription) {
  const status = enumWord(subscription.status, "SUBSCRIPTION_STATUS_");
  const reason = enumWord(subscription.disabled_reason, "DISABLED_REASON_");
  return h(
    "tr",
    { "data-subscription-id": subscription.id },
    h(
      "td",
      {},
      h("a", { href: `#/endpoints/${encodeURIComponent(subscription.id)}` }, subscription.url),
      subscription.description ? h("div", { className: "muted" }, subscription.description) : null,
    ),
    h("td", {}, statusBadge(status), reason ? h("div", { className: "muted" }, reason) : null),
    h("td", { className: "health", "data-label": "Success rate" }, successRate(subscription.health)),
    h("td", { "data-label": "Last attempt" }, attemptSummary(subscription.health?.last_attempt)),
  );
}
