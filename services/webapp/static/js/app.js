// The app: sign-in, the page the location names, and its refresh every few seconds.

import { api, ApiError, session } from "./api.js";
import { h } from "./dom.js";
import { POLL_MS, Round, Status } from "./live.js";
import home from "./pages/home.js";
import leaderboard from "./pages/leaderboard.js";
import ops from "./pages/ops.js";
import party from "./pages/party.js";
import settlement from "./pages/settlement.js";
import settlements from "./pages/settlements.js";
import team from "./pages/team.js";

const ROUTES = [
  [/^\/$/, home, "people"],
  [/^\/parties\/([^/]+)$/, party, "people"],
  [/^\/teams\/([^/]+)$/, team, "people"],
  [/^\/leaderboards(?:\/([^/]+))?$/, leaderboard, "leaderboards"],
  [/^\/settlements$/, settlements, "settlements"],
  [/^\/settlements\/([^/]+)$/, settlement, "settlements"],
  [/^\/ops$/, ops, "ops"],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOut = document.getElementById("sign-out");
const status = new Status(document.getElementById("status"));
let current = null; // the page shown: { refresh, timer, gone }

function route() {
  for (const [pattern, page, area] of ROUTES) {
    const match = pattern.exec(location.pathname);
    if (match) return { page, area, params: match.slice(1).map((part) => part && decodeURIComponent(part)) };
  }
  return null;
}

function leave() {
  if (current) {
    current.gone = true;
    clearTimeout(current.timer);
  }
  current = null;
  status.reset();
}

async function tick(shown) {
  if (shown.gone) return;
  clearTimeout(shown.timer);
  const round = new Round();
  try {
    await shown.refresh(round);
  } catch (error) {
    round.failures.push(error instanceof ApiError ? error : new ApiError(0, "error", String(error)));
    console.warn(error);
  }
  if (shown.gone) return;
  if (round.unauthorized) {
    session.signOut();
    draw("That token is not valid any more; sign in again.");
    return;
  }
  status.report(round);
  shown.timer = setTimeout(() => tick(shown), POLL_MS);
}

function draw(message) {
  leave();
  const signedIn = Boolean(session.token);
  nav.hidden = signOut.hidden = !signedIn;
  if (!signedIn) {
    main.replaceChildren(signInForm(message));
    return;
  }
  const found = route();
  for (const anchor of nav.querySelectorAll("a")) {
    anchor.classList.toggle("here", Boolean(found) && anchor.dataset.section === found.area);
  }
  if (!found) {
    main.replaceChildren(h("section", { class: "card" }, h("h1", {}, "No such page"),
                           h("p", {}, h("a", { href: "/" }, "Back to the people"))));
    return;
  }
  main.replaceChildren();
  const shown = { gone: false, timer: null };
  const context = { query: new URLSearchParams(location.search), refresh: () => tick(shown), go };
  shown.refresh = found.page(main, found.params, context);
  current = shown;
  tick(shown);
}

function signInForm(message) {
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const input = h("input", { name: "token", type: "password", autocomplete: "off", required: true,
                             placeholder: "cvg_…", "aria-label": "Token" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card signin", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste a token: the one ", h("code", {}, "convergence up"), " printed, or one made with ",
      h("code", {}, "convergence token create --name NAME --scopes …"), ". What you see follows its scopes."),
    h("label", {}, "Token ", input), button, error,
    h("p", { class: "muted" }, "The token stays in this browser tab (sessionStorage) and is sent only to this API; ",
      "closing the tab signs you out."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    session.signIn(input.value.trim());
    try {
      await api("/v1/plans"); // any valid token may read the plans in force
      draw();
    } catch (failure) {
      session.signOut();
      error.textContent = failure.status === 401 ? "That token is not valid."
        : `Could not sign in: ${failure.message}.`;
      button.disabled = false;
    }
  });
  return form;
}

/** Show another page of the app without reloading. */
function go(href, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", href);
  draw();
  window.scrollTo(0, 0);
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[href]");
  if (!anchor || anchor.target || anchor.hasAttribute("download") || event.button !== 0 || event.metaKey
      || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || !ROUTES.some(([pattern]) => pattern.test(url.pathname))) return;
  event.preventDefault();
  go(url.pathname + url.search);
});

signOut.addEventListener("click", () => {
  session.signOut();
  draw("Signed out.");
});

window.addEventListener("popstate", () => draw());
draw();
