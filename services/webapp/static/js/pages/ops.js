// Operations: the health of every part and the ledger's lag, the plans in force and the last refused reload,
// and the dead letters, each of which can be submitted again once its cause is fixed.

import { api, ApiError, gauges, health, q } from "../api.js";
import { badge, h, section, stat, table } from "../dom.js";
import { label, time } from "../format.js";
import { fill } from "../live.js";

const GAUGES = ["convergence_ledger_lag_messages", "convergence_ledger_relay_cursor_seq"];

function drawHealth([state, measured]) {
  const rows = Object.entries(state.checks).map(([part, outcome]) => h("tr", { "data-check": part },
    h("td", {}, part), h("td", {}, badge(outcome === "ok" ? "ok" : "failing", outcome === "ok" ? "ok" : "error")),
    h("td", {}, outcome === "ok" ? "" : outcome.replace(/^failing:? ?/, ""))));
  const lag = measured.convergence_ledger_lag_messages;
  return [h("div", { class: "stats" },
            stat("overall", badge(state.status, state.status === "ok" ? "ok" : "error"), { "data-testid": "health" }),
            stat("ledger lag", lag === undefined ? "–" : `${lag} messages`),
            stat("relayed up to ledger seq", measured.convergence_ledger_relay_cursor_seq ?? "–")),
          table(["part", "state", "reason"], rows)];
}

function drawPlans([plans, refused]) {
  const rows = plans.plans.map((plan) => [plan.plan, `${plan.currency}, by ${plan.period}`,
    plan.effective.from || plan.effective.to ? `${plan.effective.from || "…"} to ${plan.effective.to || "…"}`
      : "always",
    [label(plan.applies_to.kind || ""), plan.applies_to.role ? ` ${label(plan.applies_to.role)}` : "",
     plan.applies_to.tier ? ` (${plan.applies_to.tier})` : "",
     plan.applies_to.parties ? ` ${plan.applies_to.parties.join(", ")}` : ""].join(""),
    h("code", { title: plan.hash }, plan.hash.slice(7, 19)), time(plan.took_effect_at)]);
  return [
    h("p", { class: "muted" }, `Loaded ${time(plans.loaded_at)}; directory `, h("code", {}, plans.directory_hash)),
    table(["plan", "pays", "in force", "applies to", "hash", "took effect"], rows),
    h("p", {}, `Scorecards: ${plans.scorecards.join(", ") || "none"}.`),
    refused.refused_at ? [h("h3", { class: "error" }, `Last reload refused at ${time(refused.refused_at)}`),
                          h("ul", { class: "errors" }, refused.errors.map((error) => h("li", {}, error)))]
      : h("p", { class: "muted", "data-testid": "plan-errors" }, "No refused reload since the last accepted one."),
  ];
}

function replayButton(letter) {
  const outcome = h("span", { class: "outcome", role: "status" });
  const button = h("button", { type: "button", class: "quiet", "data-replay": letter.id }, "Replay");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api(`/v1/dead-letters/${q(letter.id)}/replay`, { method: "POST" });
      outcome.className = "outcome ok";
      outcome.textContent = result.accepted ? "accepted" : "already in the ledger (duplicate)";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      outcome.className = "outcome error";
      outcome.textContent = `refused (${error.status}): ${error.message}`;
      button.disabled = false;
    }
  });
  return [button, " ", outcome];
}

function drawLetters({ items }) {
  return table(["id", "when", "reason", "read from", "message", ""], items.slice().reverse().map((letter) => h("tr", {
    "data-letter": letter.id },
    h("td", { class: "n" }, letter.id), h("td", {}, time(letter.dead_lettered_at)), h("td", {}, letter.reason),
    h("td", {}, letter.topic ? `${letter.topic} [${letter.partition}] @ ${letter.offset}` : "HTTP"),
    h("td", {}, h("details", {}, h("summary", {}, "as received"), h("pre", {}, letter.value))),
    h("td", {}, replayButton(letter)))));
}

export default function ops(main) {
  main.append(h("h1", {}, "Operations"));
  const state = section(main, "Health", { id: "health" });
  const plans = section(main, "Plans in force", { id: "plans" });
  const letters = section(main, "Dead letters", { id: "dead-letters" });
  return (round) => Promise.all([
    fill(round, state, () => Promise.all([health(), gauges(GAUGES)]), drawHealth),
    fill(round, plans, () => Promise.all([api("/v1/plans"), api("/v1/plans/errors")]), drawPlans),
    fill(round, letters, () => api("/v1/dead-letters?limit=1000"), drawLetters),
  ]);
}
