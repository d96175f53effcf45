// The portal's router: one page per hash route, rendered into <main>.
import { ApiError, hasSession, signOut } from "./api.js";
import { announce, h } from "./dom.js";
import { catalogPage } from "./pages/catalog.js";
import { deliveriesPage } from "./pages/deliveries.js";
import { endpointPage } from "./pages/endpoint.js";
import { endpointsPage } from "./pages/endpoints.js";
import { feedPage } from "./pages/feed.js";
import { newEndpointPage } from "./pages/new-endpoint.js";

const ROUTES = [
  [/^#\/endpoints\/new$/, newEndpointPage],
  [/^#\/endpoints\/([^/]+)\/deliveries$/, deliveriesPage],
  [/^#\/endpoints\/([^/]+)$/, endpointPage],
  [/^#\/endpoints$/, endpointsPage],
  [/^#\/catalog$/, catalogPage],
  [/^#\/feed$/, feedPage],
];

let rendering = 0;

async function render() {
  const main = document.getElementById("main");
  const [path, search] = (location.hash || "#/endpoints").split("?");
  const match = ROUTES.map(([pattern, page]) => [path.match(pattern), page]).find(([m]) => m);
  if (!match) {
    location.hash = "#/endpoints";
    return;
  }
  const [groups, page] = match;
  const mine = ++rendering;
  for (const link of document.querySelectorAll("header nav a")) {
    const current = path.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  announce("");
  main.setAttribute("aria-busy", "true");
  try {
    // Without a session, ask for nothing (on a development server without tokens the API
    // would answer as an admin).
    if (!hasSession()) throw new ApiError(401, {});
    const content = await page({
      params: groups.slice(1).map(decodeURIComponent),
      query: new URLSearchParams(search || ""),
      stillCurrent: () => mine === rendering,
    });
    if (mine !== rendering) return;
    main.replaceChildren(...[content].flat());
  } catch (error) {
    if (mine !== rendering) return;
    main.replaceChildren(failure(error));
  }
  main.removeAttribute("aria-busy");
  main.dataset.route = location.hash;
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent + " – " : ""}Webhooks portal`;
  (heading || main).setAttribute("tabindex", "-1");
  (heading || main).focus();
}

export function failure(error) {
  if (error instanceof ApiError && error.sessionEnded) {
    return h(
      "section",
      { className: "notice" },
      h("h1", {}, "Your portal session has ended"),
      h("p", {}, "Portal sessions expire. Ask for a new portal link to continue."),
    );
  }
  return h(
    "section",
    { className: "notice" },
    h("h1", {}, "Something went wrong"),
    h("p", { className: "error" }, error.message),
  );
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await signOut();
  } catch (error) {
    announce(error.message, "error");
    return;
  }
  rendering++;
  document.querySelector("header nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const main = document.getElementById("main");
  main.replaceChildren(
    h("section", { className: "notice" }, h("h1", { tabindex: "-1" }, "You have signed out"), h("p", {}, "To come back, ask for a new portal link.")),
  );
  main.querySelector("h1").focus();
});

window.addEventListener("hashchange", render);
window.addEventListener("portal:refresh", render);
render();
