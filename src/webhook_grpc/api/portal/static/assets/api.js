// The REST API (SPEC §9) as the portal calls it: same origin, the session cookie, and the
// session's CSRF token on every change.
const BASE = "/api/v1/webhooks";
const CSRF_COOKIE = "wg_portal_csrf";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }

  get sessionEnded() {
    return this.status === 401;
  }

  // The fields a refusal names (google.rpc.BadRequest): [{field, description}].
  get violations() {
    return (this.body?.details || [])
      .filter((detail) => detail["@type"]?.endsWith("/google.rpc.BadRequest"))
      .flatMap((detail) => detail.field_violations || []);
  }
}

export function hasSession() {
  // The CSRF cookie lives exactly as long as the (HttpOnly) session cookie.
  return csrfToken() !== "";
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join("="));
  }
  return "";
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") search.append(name, String(one));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Ends the portal session (its cookies are dropped by the answer).
export async function signOut() {
  const response = await fetch("/portal/logout", {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
}

export async function call(method, path, { params, body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path + query(params), {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const api = {
  subscriptions: () => call("GET", "/subscriptions", { params: { page_size: 100 } }),
  create: (fields) => call("POST", "/subscriptions", { body: fields }),
  subscription: (id) => call("GET", `/subscriptions/${encodeURIComponent(id)}`),
  update: (id, fields) => call("PATCH", `/subscriptions/${encodeURIComponent(id)}`, { body: fields }),
  remove: (id) => call("DELETE", `/subscriptions/${encodeURIComponent(id)}`),
  activate: (id) => call("POST", `/subscriptions/${encodeURIComponent(id)}/activate`, { body: {} }),
  disable: (id) => call("POST", `/subscriptions/${encodeURIComponent(id)}/disable`, { body: {} }),
  rotate: (id) => call("POST", `/subscriptions/${encodeURIComponent(id)}/rotate-secret`, { body: {} }),
  test: (id) => call("POST", `/subscriptions/${encodeURIComponent(id)}/test`, { body: {} }),
  deliveries: (params) => call("GET", "/deliveries", { params }),
  delivery: (id) => call("GET", `/deliveries/${encodeURIComponent(id)}`),
  retry: (id) => call("POST", `/deliveries/${encodeURIComponent(id)}/retry`, { body: {} }),
  recover: (subscriptionId, since) =>
    call("POST", "/deliveries:recover", { body: { subscription_id: subscriptionId, since } }),
  eventTypes: () => call("GET", "/event-types"),
  events: (params) => call("GET", "/events", { params }),
};
