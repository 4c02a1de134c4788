// A manager's page: who reported to them when (effective-dated), the team's measures, the override and
// team-condition lines, and the team on each scorecard's leaderboard.

import { api, q } from "../api.js";
import { amounts, badge, h, link, num, section, table } from "../dom.js";
import { earningsTable } from "../explain.js";
import { label, measure, period, time } from "../format.js";
import { fill } from "../live.js";

const WINDOWS = ["period", "90d"];

function days({ first_day: first, last_day: last }) {
  if (first && last) return `${first} to ${last}`;
  if (first) return `since ${first}`;
  return last ? `until ${last}` : "all along";
}

function drawMembers([manager, crew], title) {
  title.textContent = `Team of ${manager.name || manager.party_id}`;
  const rows = crew.members.map((member) => h("tr", { "data-member": member.party_id },
    h("td", {}, link(`/parties/${q(member.party_id)}`, member.party_id), member.name ? ` ${member.name}` : ""),
    h("td", {}, label(member.role || member.kind)),
    h("td", {}, member.reports_now ? badge("reports now", "ok") : badge(`now under ${member.manager_id || "nobody"}`,
                                                                         "muted")),
    h("td", {}, h("ul", { class: "spans" }, member.spans.map((span) => h("li", {}, days(span)))))));
  return [table(["member", "role", "today", "reported to this manager"], rows),
          h("p", { class: "muted" }, `As of ${time(crew.as_of)}. Team measures add each member's days under this `
            + "manager only.")];
}

function drawMeasures(byWindow) {
  const names = Object.keys(byWindow[0].measures);
  const rows = names.map((name) => [label(name), ...byWindow.map((read) => num(measure(name, read.measures[name]),
                                                                               `team-${name}-${read.window}`))]);
  return [h("p", { class: "muted" }, `${period(byWindow[0].period)}, as of ${time(byWindow[0].as_of)}; `
            + `${byWindow[0].events} events this period.`),
          table(["measure", ...byWindow.map((read) => (read.window === "period" ? "this period" : read.window))],
                rows)];
}

function teamLines(earned) {
  const lines = earned.lines.filter((line) => line.explanation && (line.explanation.type === "override"
    || line.explanation.conditions.some((check) => check.scope === "team")
    || (line.explanation.gate && line.explanation.gate.scope === "team")));
  if (!lines.length) return h("p", { class: "muted" }, "No plan pays this party on its team.");
  return [earningsTable(lines),
          h("p", { class: "total" }, `All of this party's live earnings in ${period(earned.period)}: `,
            amounts(earned.totals), " · ", link(`/parties/${q(earned.party_id)}`, "every line"))];
}

function drawBoards({ boards, members }) {
  const shown = boards.map((board) => {
    const entries = board.entries.filter((entry) => members.includes(entry.party_id));
    if (!entries.length) return null;
    return [h("h3", {}, link(`/leaderboards/${q(board.scorecard)}?period=${q(board.period)}`, board.scorecard)),
            table(["in team", "overall", "member", "score"], entries.map((entry, index) => [
              num(index + 1), num(entry.rank), link(`/parties/${q(entry.party_id)}`, entry.party_id),
              num(entry.score, `team-score-${entry.party_id}`)]))];
  }).filter(Boolean);
  return shown.length ? shown : h("p", { class: "muted" }, "No scorecard applies to the members of this team.");
}

export default function team(main, [id], { query }) {
  const chosen = query.get("period");
  const suffix = chosen ? `&period=${q(chosen)}` : "";
  const title = h("h1", {}, `Team of ${id}`);
  main.append(h("div", { class: "head" }, title, link(`/parties/${q(id)}`, "the manager's own page")));
  const members = section(main, "Members", { id: "members" });
  const grid = h("div", { class: "grid" });
  main.append(grid);
  const lines = section(grid, "Override and team-condition lines", { id: "team-lines" });
  const measures = section(grid, "Team measures", { id: "team-measures" });
  const boards = section(main, "Team leaderboard", { id: "team-board" });

  return async (round) => {
    const [crew] = await Promise.all([
      fill(round, members, () => Promise.all([api(`/v1/parties/${q(id)}`), api(`/v1/parties/${q(id)}/team`)]),
           (found) => drawMembers(found, title)),
      fill(round, measures, () => Promise.all(WINDOWS.map((window) => api(
        `/v1/parties/${q(id)}/measures?scope=team&window=${window}${suffix}`))), drawMeasures),
      fill(round, lines, () => api(`/v1/parties/${q(id)}/earnings${chosen ? `?period=${q(chosen)}` : ""}`), teamLines),
    ]);
    if (!crew) return;
    const current = crew[1].members.filter((member) => member.reports_now).map((member) => member.party_id);
    await fill(round, boards, async () => {
      const { scorecards } = await api("/v1/plans");
      const all = await Promise.all(scorecards.map((card) => api(
        `/v1/leaderboards/${q(card)}?limit=1000${suffix}`)));
      return { boards: all, members: current };
    }, drawBoards);
  };
}
