// Building the page: elements, and the words and formats the portal shows values in.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function time(value) {
  if (!value) return "—";
  return new Date(value).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function milliseconds(duration) {
  if (!duration) return "—";
  return `${Math.round(parseFloat(duration) * 1000)} ms`;
}

export function hours(duration) {
  const seconds = parseFloat(duration || "0");
  return seconds >= 3600 ? `${seconds / 3600} h` : `${seconds} s`;
}

// "SUBSCRIPTION_STATUS_ACTIVE" -> "active"
export function enumWord(value, prefix) {
  if (!value || value.endsWith("_UNSPECIFIED")) return "";
  return value.slice(prefix.length).toLowerCase().replaceAll("_", " ");
}

export function statusBadge(word) {
  return h("span", { className: `badge badge-${word.replaceAll(" ", "-")}` }, word);
}

export function successRate(health) {
  const attempts = health?.attempt_count || 0;
  if (!attempts) return "no attempts";
  const rate = (100 * (attempts - (health.failed_count || 0))) / attempts;
  return `${rate.toFixed(rate === 100 || rate === 0 ? 0 : 1)} % of ${attempts}`;
}

export function attemptSummary(attempt) {
  if (!attempt) return "never";
  const status = attempt.status_code ? `HTTP ${attempt.status_code}` : enumWord(attempt.error, "ATTEMPT_ERROR_");
  return `${status} at ${time(attempt.attempted_at)}`;
}

// Announce a result to screen readers and sighted users alike.
export function announce(message, kind = "info") {
  const status = document.getElementById("status");
  status.className = `status-${kind}`;
  status.textContent = message;
}
