// A live earnings line in words: what it is paid on, what the rule did (band, gate, conditions, cap, tier) and
// what the next step up needs, from the `explanation` of `GET /v1/parties/{id}/earnings`.

import { h, table } from "./dom.js";
import { decimal, label, measure, money, percent } from "./format.js";

function over(window, scope) {
  const span = window === "period" ? "this period" : `the last ${window}`;
  return scope === "team" ? `${span}, team` : span;
}

function bounds(check) {
  const parts = [];
  if (check.min !== null) parts.push(`≥ ${measure(check.measure, check.min)}`);
  if (check.max !== null) parts.push(`≤ ${measure(check.measure, check.max)}`);
  return parts.join(" and ");
}

/** One condition: its value against its bounds, met or not, and how far it is. */
export function condition(check, prefix = "") {
  const distance = check.short_by === null ? "" : ` — needs ${measure(check.measure, check.short_by)} more`;
  return h("li", { class: check.held ? "met" : "unmet", "data-held": String(check.held) },
    h("span", { class: "mark", "aria-hidden": "true" }, check.held ? "✓" : "✗"),
    `${prefix}${label(check.measure)} (${over(check.window, check.scope)}) is ${measure(check.measure, check.value)}, `
    + `needs ${bounds(check)}: ${check.held ? "met" : "not met"}${distance}`);
}

function rateOf(explained, currency) {
  const { type, rate } = explained;
  if (type === "per_unit") return `${money(decimal(rate), currency)} per unit of ${label(explained.base)}`;
  if (type === "points") return `${decimal(rate)} pts per unit of ${label(explained.base)}`;
  return `${percent(rate)} of ${type === "override" ? "the team's " : ""}${label(explained.base)}`;
}

function next(step) {
  const name = label(step.measure), at = measure(step.measure, step.at);
  if (step.level !== null) {
    return `Next tier, ${step.level}: ${measure(step.measure, step.needed)} more ${name} `
      + `(${over(step.window, "self")}) reaches ${at}`;
  }
  const more = Number(step.needed) === 0 ? `any more ${name} passes ${at}`
    : `${measure(step.measure, step.needed)} more ${name} passes ${at}`;
  return `Next band, at ${percent(step.rate)}: ${more}`;
}

/** The items explaining one line (`line` as the earnings endpoint gives it). */
function explanation(line) {
  const explained = line.explanation;
  if (!explained) return [];
  const items = [];
  const { type, base } = explained;
  const baseValue = line.base === null ? null : measure(base, line.base);
  if (type === "tiered_rate") {
    const attainment = line.measures.attainment;
    items.push(h("li", {}, `Band ${explained.band} of ${explained.bands} at ${percent(explained.rate)}, `
      + `on ${label(base)} ${baseValue}${attainment ? ` (attainment ${percent(attainment)})` : ""}`));
  } else if (type === "bonus") {
    items.push(h("li", {}, "Pays when every condition holds:"));
  } else {
    const factor = explained.factor !== null && Number(explained.factor) !== 1 ? ` × ${decimal(explained.factor)}` : "";
    const tier = explained.level ? ` (${explained.level} tier)` : "";
    items.push(h("li", {}, `${rateOf(explained, line.currency)}${factor}${tier}: ${label(base)} ${baseValue}`));
  }
  if (explained.gate) {
    items.push(condition(explained.gate, "Gate: "));
    if (!explained.gate.held) items.push(h("li", { class: "unmet" }, "Gate not met: no band pays more than the first"));
  }
  const prefix = type === "per_unit" ? "Multiplier: " : "";
  items.push(...explained.conditions.map((check) => condition(check, prefix)));
  if (explained.cap !== null) {
    items.push(h("li", { class: explained.capped ? "unmet" : "", "data-capped": String(explained.capped) },
      explained.capped ? `Cap of ${money(explained.cap, line.currency)} hit: the bands gave `
        + `${money(explained.uncapped, line.currency)}` : `Cap of ${money(explained.cap, line.currency)} not reached`));
  }
  if (explained.next) items.push(h("li", { class: "next" }, next(explained.next)));
  else if (type === "tiered_rate") items.push(h("li", { class: "next" }, "Top band reached"));
  return [h("ul", { class: "why" }, items)];
}

/** Live earnings lines in a table: each line's name, amount, and how it was worked out. */
export function earningsTable(lines) {
  return table(["line", "amount", "how it was worked out"], lines.map((line) => h("tr", {
    "data-line": `${line.plan}/${line.component}` },
    h("td", {}, h("strong", {}, label(line.component)), h("div", { class: "muted" }, line.plan)),
    h("td", { class: "n amount" }, money(line.amount, line.currency)),
    h("td", { class: "why-cell" }, explanation(line)))), { class: "lines" });
}
