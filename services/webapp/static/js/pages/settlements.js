// Payroll: the closed periods with their status, approvals and totals, and closing the next one.

import { api, ApiError, q } from "../api.js";
import { amounts, badge, h, link, section, table } from "../dom.js";
import { current, period, periodsBefore, time } from "../format.js";
import { fill } from "../live.js";

function drawList({ items }) {
  return table(["period", "status", "totals", "approvals", "statements", "closed"], items.slice().reverse().map(
    (item) => h("tr", { "data-period": item.period },
      h("td", {}, link(`/settlements/${q(item.period)}`, `${period(item.period)} (${item.period})`)),
      h("td", {}, badge(item.status)),
      h("td", { class: "n" }, amounts(item.totals, { "data-testid": `totals-${item.period}` })),
      h("td", { class: "n" }, `${item.approvals} of ${item.approvals_required}`),
      h("td", { class: "n" }, item.statements),
      h("td", {}, `${time(item.closed_at)} by ${item.closed_by || "?"}`))));
}

/** The month after the last closed one, else last month: what is usually closed next. */
function nextToClose(items) {
  const months = items.map((item) => item.period).filter((text) => !text.includes("Q")).sort();
  if (!months.length) return periodsBefore(current("month"), 2)[1];
  const [year, month] = months[months.length - 1].split("-").map(Number);
  return month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, "0")}`;
}

export default function settlements(main, _, { go, refresh }) {
  main.append(h("h1", {}, "Payroll"));
  const list = section(main, "Closed periods", { id: "settlements" });
  const closing = section(main, "Close a period", { id: "close" });
  const input = h("input", { name: "period", required: true, pattern: "[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])",
                             placeholder: "YYYY-MM", "aria-label": "Period to close", size: 9 });
  const message = h("p", { role: "alert" });
  const confirm = h("dialog", { id: "confirm-close" });
  const form = h("form", { class: "inline" }, input, h("button", { type: "submit" }, "Close…"));
  closing.body.append(h("p", {}, "Closing freezes every statement of the period from the events ingested so far; "
    + "nothing changes a frozen statement afterwards (late events come as adjustments at the next close)."),
    form, message, confirm);
  let suggested = false;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = input.value.trim();
    const yes = h("button", { type: "button", class: "danger" }, `Close ${chosen}`);
    const no = h("button", { type: "button", class: "quiet" }, "Cancel");
    confirm.replaceChildren(h("p", {}, `Close ${period(chosen)} (${chosen}) and freeze its statements? `
      + "This cannot be undone."), h("div", { class: "actions" }, yes, no));
    no.addEventListener("click", () => confirm.close());
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api(`/v1/periods/${q(chosen)}/close`, { method: "POST" });
        confirm.close();
        go(`/settlements/${q(chosen)}`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        confirm.close();
        message.className = "error";
        message.textContent = `Not closed (${error.status}): ${error.message}`;
        refresh();
      }
    });
    confirm.showModal();
  });

  return (round) => fill(round, list, () => api("/v1/settlements"), (found) => {
    if (!suggested) {
      input.value = nextToClose(found.items);
      suggested = true;
    }
    return found.items.length ? drawList(found) : h("p", { class: "muted" }, "No period is closed yet.");
  });
}
