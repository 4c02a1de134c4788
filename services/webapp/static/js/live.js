// Keeping a page live: every few seconds each section is read again and redrawn when its data changed. A
// section the API refuses says why (a missing scope: 403); one it cannot read keeps what it showed, marked stale,
// and the status bar says the request failed and since when the data is old.

import { ApiError } from "./api.js";
import { h, nodes } from "./dom.js";

export const POLL_MS = 4000;
const STALE_MS = 3 * POLL_MS;

function clock(moment) {
  return moment.toISOString().slice(11, 19);
}

/** One refresh of a page: what failed, and whether the token was refused outright (401). */
export class Round {
  constructor() {
    this.failures = [];
    this.unauthorized = null;
  }
}

function refusal(error) {
  if (error.status === 403) {
    return h("p", { class: "denied", "data-testid": "denied" },
             `Your token may not see this (403: ${error.message}). Sign in with a token that has that scope.`);
  }
  return h("p", { class: "muted" }, `${error.message} (${error.status}).`);
}

/** Read `load()` into `part` (a `section`), drawn with `draw(data)` when it changed; its data, or undefined.
 * A part the token may not see (403) is not asked for again while the page is shown: a token's scopes do not
 * change. */
export async function fill(round, part, load, draw) {
  if (part.denied) return undefined;
  let data;
  try {
    data = await load();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      round.unauthorized = error;
    } else if (error.outage) {
      round.failures.push(error);
      part.root.classList.add("stale");
      part.note.textContent = part.read
        ? `Not updated: ${error.message}. Showing what was read at ${clock(part.read)} UTC.`
        : `Could not load: ${error.message}.`;
    } else {
      part.denied = error.status === 403;
      part.shown = undefined;
      part.root.classList.remove("stale");
      part.note.textContent = "";
      part.body.replaceChildren(refusal(error));
    }
    return undefined;
  }
  part.read = new Date();
  part.root.classList.remove("stale");
  part.note.textContent = "";
  const json = JSON.stringify(data);
  if (json !== part.shown) {
    part.shown = json;
    part.body.replaceChildren(...nodes(draw(data)));
  }
  return data;
}

/** The status bar: live and when last updated, a failed request, or data gone stale. */
export class Status {
  constructor(element) {
    this.element = element;
    this.updated = null;
    this.failure = null;
    setInterval(() => this.show(), 1000);
  }

  reset() {
    this.updated = null;
    this.failure = null;
    this.show();
  }

  report(round) {
    if (round.failures.length) this.failure = round.failures[0];
    else { this.failure = null; this.updated = new Date(); }
    this.show();
  }

  show() {
    const { element, updated, failure } = this;
    const since = updated ? ` · data from ${clock(updated)} UTC` : "";
    let state = "idle", text = "";
    if (failure) [state, text] = ["error", `Request failed: ${failure.message}${since}`];
    else if (updated && Date.now() - updated > STALE_MS) [state, text] = ["stale", `Stale${since}`];
    else if (updated) [state, text] = ["ok", `Live · updated ${clock(updated)} UTC`];
    element.className = `status ${state}`;
    element.dataset.state = state;
    element.textContent = text;
  }
}
