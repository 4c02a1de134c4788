// Leaderboards: the parties a scorecard applies to, ranked by live score, for a period of one's choice.

import { api, q } from "../api.js";
import { h, link, region, section, table } from "../dom.js";
import { current, period, periodsBefore, time } from "../format.js";
import { fill } from "../live.js";

const MONTHS = 12;
const QUARTERS = 4;

function drawBoard(board) {
  const rows = board.entries.map((entry) => h("tr", { "data-party": entry.party_id,
                                                      class: entry.rank <= 3 ? "top" : "" },
    h("td", { class: "n" }, entry.rank), h("td", {}, link(`/parties/${q(entry.party_id)}`, entry.party_id)),
    h("td", { class: "n", "data-testid": `score-${entry.party_id}` }, entry.score)));
  return [h("p", { class: "muted" }, `${board.scorecard} · ${period(board.period)} · as of ${time(board.as_of)}`),
          table(["rank", "party", "score"], rows, { class: "board" })];
}

export default function leaderboard(main, [name], { query, go }) {
  const chosen = query.get("period") || current("month");
  const cards = h("nav", { class: "tabs", "aria-label": "Scorecards" });
  const choices = [...periodsBefore(current("month"), MONTHS), ...periodsBefore(current("quarter"), QUARTERS)];
  if (!choices.includes(chosen)) choices.unshift(chosen);
  const picker = h("select", { name: "period", "aria-label": "Period" },
                   choices.map((value) => h("option", { value, selected: value === chosen }, period(value))));
  main.append(h("div", { class: "head" }, h("h1", {}, "Leaderboards"),
                h("label", { class: "picker" }, "Period ", picker)), cards);
  const board = section(main, name || "Leaderboard", { id: "board" });
  const tabs = region(cards);
  let scorecard = name;
  picker.addEventListener("change", () => go(`/leaderboards/${q(scorecard)}?period=${q(picker.value)}`,
                                             { replace: true }));

  return async (round) => {
    const plans = await fill(round, tabs, () => api("/v1/plans"), (found) => (
      found.scorecards.map((card) => link(`/leaderboards/${q(card)}?period=${q(chosen)}`, card))));
    if (!scorecard && plans && plans.scorecards.length) {
      [scorecard] = plans.scorecards;
      board.root.querySelector("h2").textContent = scorecard;
    }
    for (const tab of cards.querySelectorAll("a")) tab.classList.toggle("here", tab.textContent === scorecard);
    if (scorecard) {
      await fill(round, board, () => api(`/v1/leaderboards/${q(scorecard)}?limit=100&period=${q(chosen)}`), drawBoard);
    }
  };
}
