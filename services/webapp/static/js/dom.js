// Building the page: elements from plain data, text always set as text (nothing from the API becomes HTML).

import { money } from "./format.js";

/** An element: `attrs` are attributes (`on*` functions are listeners, `class`, `data-*`), then children. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...nodes(children));
  return element;
}

/** What may be drawn, flattened: nodes and text; null, undefined and false are nothing. */
export function nodes(children) {
  return [children].flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
}

/** A link to one of the app's pages. */
export function link(href, text) {
  return h("a", { href }, text);
}

/** A table with a header row; `rows` are arrays of cells (a cell is a node, text, or `{cell, class}`). */
export function table(headers, rows, attrs = {}) {
  const cell = (tag, value) => (value && value.cell !== undefined
    ? h(tag, { class: value.class, "data-testid": value.testid }, value.cell) : h(tag, {}, value));
  const body = rows.length ? rows.map((row) => (row instanceof Node ? row : h("tr", {}, row.map((v) => cell("td", v)))))
    : [h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing yet."))];
  return h("div", { class: "scroll" },
    h("table", attrs, h("thead", {}, h("tr", {}, headers.map((v) => cell("th", v)))), h("tbody", {}, body)));
}

/** A numeric cell, right-aligned. */
export function num(value, testid) {
  return { cell: value, class: "n", testid };
}

/** A section of a page with a title; its `body` is redrawn as data comes, its `note` says how fresh it is. */
export function section(parent, title, attrs = {}) {
  const body = h("div", { class: "body" });
  const note = h("p", { class: "note", role: "status" });
  const root = h("section", { class: "card", ...attrs }, h("h2", {}, title), note, body);
  parent.append(root);
  return { root, body, note, shown: undefined };
}

/** A badge such as a status or a kind. */
export function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

/** Amounts per currency (money first, points last), each in a `data-currency` span. */
export function amounts(byCurrency, attrs = {}) {
  const entries = Object.entries(byCurrency || {})
    .sort(([a], [b]) => (a === "PTS") - (b === "PTS") || a.localeCompare(b));
  const parts = entries.flatMap(([currency, amount], index) => [
    index ? " · " : null, h("span", { "data-currency": currency }, money(amount, currency))]);
  return h("span", { class: "amounts", ...attrs }, ...(parts.length ? parts : ["–"]));
}

/** A figure with its caption. */
export function stat(caption, value, attrs = {}) {
  return h("div", { class: "stat", ...attrs }, h("span", { class: "caption" }, caption),
           h("span", { class: "value" }, value));
}

/** A part of a page drawn in `element` itself, without a card or a note of its own (see `section`). */
export function region(element) {
  return { root: element, body: element, note: h("p"), shown: undefined };
}
