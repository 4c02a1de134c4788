// A person's page (a rep, an agent, a partner or a customer): live earnings line by line with the rule's
// workings, the scorecard, a chart of the last twelve periods, and the frozen statements with their events.

import { api, ApiError, q } from "../api.js";
import { historyChart } from "../chart.js";
import { amounts, badge, h, link, num, section, stat, table } from "../dom.js";
import { earningsTable } from "../explain.js";
import { label, measure, money, percent, period, time, used } from "../format.js";
import { fill } from "../live.js";

const HISTORY = 12;
const ENDED_MS = 60_000; // `as_of` that long ago: the period has ended (as_of is then its end)

function drawWho(who) {
  const facts = [
    stat("kind", label(who.kind)), who.role && stat("role", label(who.role)),
    who.tier && stat("tier", who.tier),
    who.manager_id && stat("manager", link(`/teams/${q(who.manager_id)}`, who.manager_id)),
    who.role === "manager" && stat("team", link(`/teams/${q(who.party_id)}`, "their team")),
  ];
  const plans = who.plans.map((plan) => h("li", {}, `${plan.plan} (${plan.currency}, by ${plan.period}) `,
                                             h("code", { title: plan.hash }, plan.hash.slice(7, 19))));
  const registrations = who.registrations.map((r) => [r.effective_from, label(r.kind), label(r.role || ""),
                                                         r.manager_id || "", r.tier || ""]);
  return [
    h("div", { class: "stats" }, facts),
    plans.length ? [h("h3", {}, "Paid by"), h("ul", { class: "plans" }, plans)]
      : h("p", {}, "No plan pays this party now."),
    registrations.length ? h("details", {}, h("summary", {}, `Registrations (${registrations.length})`),
      table(["in force from", "kind", "role", "manager", "tier"], registrations)) : null,
  ];
}

function highlights(earned) {
  if (earned.kind === "customer") {
    const points = earned.lines.find((line) => line.explanation && line.explanation.type === "points");
    if (!points) return null;
    const { level, next } = points.explanation;
    return h("div", { class: "stats highlight" },
      stat("loyalty tier", level || "none yet", { "data-testid": "loyalty-tier" }),
      stat("points this period", money(points.amount, points.currency)),
      next && stat(`to reach ${next.level}`, `${measure(next.measure, next.needed)} more ${label(next.measure)}`));
  }
  if (earned.kind === "partner") {
    return h("div", { class: "stats highlight" }, earned.lines.map((line) => stat(label(line.component),
      money(line.amount, line.currency), { "data-testid": `partner-${line.component}` })));
  }
  return null;
}

function drawEarnings(earned) {
  return [
    h("p", { class: "muted" }, Date.now() - Date.parse(earned.as_of) > ENDED_MS
      ? `${period(earned.period)} as it pays now, with every event so far, as of its end (${time(earned.as_of)}); `
        + "a closed period's frozen statement is below."
      : `${period(earned.period)} so far, as of ${time(earned.as_of)}: live, before its close.`),
    highlights(earned),
    earningsTable(earned.lines),
    h("p", { class: "total" }, "Total ", amounts(earned.totals, { "data-testid": "earnings-total" })),
  ];
}

function drawCard(card) {
  if (!card.scorecard) return h("p", { class: "muted" }, "No scorecard applies to this party.");
  const rows = card.metrics.map((metric) => [
    [`${label(metric.measure)} (${metric.window})`,
     h("div", { class: "muted" }, `weight ${measure("weight", metric.weight)}`)],
    num(measure(metric.measure, metric.value)), num(measure(metric.measure, metric.target)),
    num([percent(metric.attainment), h("br"), h("meter", { min: 0, max: 1.5, value: metric.attainment })])]);
  return [
    h("p", { class: "score" }, h("span", { class: "big", "data-testid": "score" }, card.score), " / 100 on ",
      link(`/leaderboards/${q(card.scorecard)}?period=${q(card.period)}`, card.scorecard), ` · ${period(card.period)}`),
    table(["measure", "value", "target", "attainment"], rows, { class: "metrics" }),
  ];
}

function eventsOf(lines, index) {
  const line = lines[index];
  if (!line || !line.events.length) return h("p", { class: "muted" }, "No event behind this line.");
  return h("ul", { class: "events" },
           line.events.map((event) => h("li", {}, h("code", {}, `${event.source}/${event.id}`))));
}

function drawStatement(partyId, { period: closed, status, statement }) {
  if (!statement) return null;
  const events = h("div", { class: "events-behind" });
  const rows = statement.lines.map((line, index) => h("tr", {
    "data-line": `${line.plan}/${line.component}/${line.kind}` },
    h("td", {}, h("strong", {}, label(line.component)), h("div", { class: "muted" }, `${line.plan} · `
      + `${line.kind === "adjustment" ? `adjustment of ${line.corrects}` : line.kind}`)),
    h("td", { class: "n amount" }, money(line.amount, line.currency)),
    h("td", { class: "measures" }, Object.entries(line.measures).map(([key, value]) => used(key, value)).join("; ")),
    h("td", { class: "events" }, h("button", { type: "button", class: "quiet", "data-events": index,
      onclick: async () => {
        try {
          const behind = await api(`/v1/settlements/${q(closed)}/statements/${q(partyId)}/events`);
          events.replaceChildren(h("h4", {}, `Events behind ${label(line.component)} (${line.kind})`),
                                 eventsOf(behind.lines, index));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          events.replaceChildren(h("p", { class: "error" }, `Could not list the events: ${error.message}.`));
        }
      } }, `${line.events} events`))));
  return h("details", { class: "statement", "data-period": closed },
    h("summary", {}, h("strong", {}, `${period(closed)}`), ` (${closed}) · `,
      amounts(statement.totals, { "data-testid": "statement-total" }), " · ", badge(status)),
    table(["line", "amount", "measures it used", "events behind it"], rows, { class: "lines" }), events);
}

export default function party(main, [id], { query, go }) {
  const chosen = query.get("period");
  const suffix = chosen ? `?period=${q(chosen)}` : "";
  const picker = h("select", { name: "period", "aria-label": "Period" }, h("option", { value: chosen || "" },
                                                                          chosen ? period(chosen) : "this period"));
  picker.addEventListener("change", () => go(`/parties/${q(id)}${picker.value ? `?period=${q(picker.value)}` : ""}`,
                                             { replace: true }));
  const title = h("h1", {}, id);
  main.append(h("div", { class: "head" }, title, h("label", { class: "picker" }, "Period ", picker)));
  const who = section(main, "Who", { id: "who" });
  const grid = h("div", { class: "grid" });
  main.append(grid);
  const earnings = section(grid, "Earnings", { id: "earnings" });
  const card = section(grid, "Scorecard", { id: "scorecard" });
  const chart = section(main, `Earnings and score, last ${HISTORY} periods`, { id: "history" });
  const statements = section(main, "Frozen statements", { id: "statements" });
  const frozen = new Map(); // period -> the party's statement (null: none): frozen, so read once

  async function settled() {
    const closed = (await api("/v1/settlements")).items;
    await Promise.all(closed.filter((item) => !frozen.has(item.period)).map(async (item) => {
      try {
        frozen.set(item.period, await api(`/v1/settlements/${q(item.period)}/statements/${q(id)}`));
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
        frozen.set(item.period, null);
      }
    }));
    return closed.map((item) => ({ period: item.period, status: item.status, statement: frozen.get(item.period) }));
  }

  function drawStatements(closed) {
    const shown = closed.filter((item) => item.statement).reverse().map((item) => drawStatement(id, item));
    return shown.length ? shown : h("p", { class: "muted" }, "No closed period has a statement for this party yet.");
  }

  function drawChart({ history, closed }) {
    const latest = history.periods[history.periods.length - 1].totals;
    const currency = Object.keys(latest).find((code) => code !== "PTS") || Object.keys(latest)[0] || "USD";
    const byPeriod = new Map(closed.map((item) => [item.period, item.statement]));
    const points = history.periods.map((point) => {
      const isClosed = byPeriod.has(point.period);
      const statement = byPeriod.get(point.period);
      const amount = isClosed ? (statement && statement.totals[currency]) || "0" : point.totals[currency];
      return { period: point.period, frozen: isClosed, earned: amount === undefined ? null : Number(amount),
               score: point.score === null ? null : Number(point.score) };
    });
    const [now, ...before] = [...history.periods].reverse();
    picker.replaceChildren(h("option", { value: "" }, `${period(now.period)} (now)`),
                           ...before.map((point) => h("option", { value: point.period }, period(point.period))));
    picker.value = chosen && chosen !== now.period ? chosen : "";
    return [historyChart(h("div", { class: "chart", "data-testid": "chart" }), points, currency),
            h("p", { class: "muted" }, "Closed periods: the frozen statement's total; the others: live, as of "
              + "their end (the current one so far).")];
  }

  return (round) => Promise.all([
    fill(round, who, () => api(`/v1/parties/${q(id)}`), (found) => {
      title.textContent = found.name ? `${found.name} (${id})` : id;
      return drawWho(found);
    }),
    fill(round, earnings, () => api(`/v1/parties/${q(id)}/earnings${suffix}`), drawEarnings),
    fill(round, card, () => api(`/v1/scorecards/${q(id)}${suffix}`), drawCard),
    (async () => {
      const closed = await fill(round, statements, settled, drawStatements);
      await fill(round, chart, async () => ({ history: await api(`/v1/parties/${q(id)}/history?periods=${HISTORY}`),
                                              closed: closed || [] }), drawChart);
    })(),
  ]);
}
