// One closed period for payroll: its status and approvals, approve or reject it, pull its payroll files, its
// statements, and the audit log of everything done to it.

import { api, ApiError, file, q } from "../api.js";
import { amounts, badge, h, link, section, stat, table } from "../dom.js";
import { label, period, time } from "../format.js";
import { fill } from "../live.js";

function drawState(settled) {
  const facts = [stat("status", badge(settled.status), { "data-testid": "status" }),
                 stat("closed", `${time(settled.closed_at)} by ${settled.closed_by || "?"}`),
                 stat("approvals", `${settled.approvals.length} of ${settled.approvals_required}`,
                      { "data-testid": "approvals" }),
                 settled.export_id && stat("export", settled.export_id)];
  const approvals = settled.approvals.map((approval) => [approval.name, time(approval.at)]);
  return [
    h("div", { class: "stats" }, facts),
    h("p", { class: "total" }, "Totals ", amounts(settled.totals, { "data-testid": "settlement-totals" })),
    settled.status === "rejected" ? h("p", { class: "error", "data-testid": "rejection" },
      `Rejected by ${settled.rejected_by} at ${time(settled.rejected_at)}: ${settled.rejection_reason}`) : null,
    h("h3", {}, "Approvals so far"),
    table(["name", "at"], approvals, { "data-testid": "approvals-table" }),
    h("details", {}, h("summary", {}, "Plan versions used"), table(["plan", "hash"], Object.entries(settled.plan_hashes)
      .map(([plan, hash]) => [plan, h("code", {}, hash)]))),
  ];
}

function drawStatements(settled) {
  return table(["party", "kind", "total", "lines"], settled.statements.map((statement) => h("tr", {
    "data-party": statement.party_id },
    h("td", {}, link(`/parties/${q(statement.party_id)}?period=${q(settled.period)}`, statement.party_id)),
    h("td", {}, label(statement.kind)), h("td", { class: "n" }, amounts(statement.totals)),
    h("td", { class: "n" }, statement.lines.length))));
}

function drawAudit({ items }) {
  return table(["at", "by", "action", "detail", "content hash"], items.map((entry) => h("tr", {
    "data-action": entry.action },
    h("td", {}, time(entry.at)), h("td", {}, entry.actor), h("td", {}, entry.action),
    h("td", {}, entry.detail ? Object.entries(entry.detail).map(([key, value]) => `${key}: ${value}`).join(", ") : ""),
    h("td", {}, entry.content_hash ? h("code", { title: entry.content_hash }, entry.content_hash.slice(7, 19)) : ""))));
}

function actions(chosen, refresh) {
  const message = h("p", { role: "alert", "data-testid": "action-message" });
  const done = (text) => { message.className = "ok"; message.textContent = text; refresh(); };
  const failed = (error) => {
    if (!(error instanceof ApiError)) throw error;
    message.className = "error";
    message.textContent = `Refused (${error.status}): ${error.message}`;
  };
  const approve = h("button", { type: "button", name: "approve" }, "Approve");
  approve.addEventListener("click", async () => {
    try {
      const settled = await api(`/v1/settlements/${q(chosen)}/approve`, { method: "POST" });
      done(`Approved: now ${settled.status}, ${settled.approvals.length} of ${settled.approvals_required} approvals.`);
    } catch (error) { failed(error); }
  });
  const reason = h("input", { name: "reason", required: true, maxlength: 2000, placeholder: "why it goes back",
                              "aria-label": "Reason for rejecting" });
  const reject = h("form", { class: "inline" }, reason, h("button", { type: "submit", class: "danger" }, "Reject"));
  reject.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/settlements/${q(chosen)}/reject`, { method: "POST", body: { reason: reason.value } });
      reason.value = "";
      done("Rejected: its approvals are cleared; it can be approved again.");
    } catch (error) { failed(error); }
  });
  return h("div", {}, h("div", { class: "actions" }, approve, reject), message);
}

function exports(chosen, refresh) {
  const currency = h("input", { name: "currency", value: "USD", pattern: "[A-Z]{3}", size: 4,
                                "aria-label": "Currency" });
  const detail = h("select", { name: "detail", "aria-label": "Detail" }, h("option", { value: "party" }, "per party"),
                   h("option", { value: "lines" }, "per line"));
  const message = h("p", { role: "status" });
  const pull = (format) => async () => {
    const name = `payouts.${format}`;
    try {
      const { blob, headers } = await file(`/v1/settlements/${q(chosen)}/${name}?currency=${q(currency.value)}`
                                           + `&detail=${q(detail.value)}`);
      const anchor = h("a", { href: URL.createObjectURL(blob),
                              download: `${chosen}-${currency.value}-${detail.value}-${name}` });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      URL.revokeObjectURL(anchor.href);
      message.className = "ok";
      message.textContent = `Pulled ${name}: the settlement is ${headers.get("X-Settlement-Status")}`
        + `${headers.get("X-Export-Id") ? `, export ${headers.get("X-Export-Id")}` : ""}.`;
      refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.className = "error";
      message.textContent = `Not pulled (${error.status}): ${error.message}`;
    }
  };
  return h("div", {},
    h("p", {}, "The first pull of an approved period exports it (status exported, with an export id); a pull before "
      + "approval is a preview. Loyalty points are pulled with currency PTS."),
    h("div", { class: "actions" }, h("label", {}, "Currency ", currency), h("label", {}, "Detail ", detail),
      h("button", { type: "button", onclick: pull("csv") }, "Download payouts.csv"),
      h("button", { type: "button", onclick: pull("json") }, "Download payouts.json")),
    message);
}

export default function settlement(main, [chosen], { refresh }) {
  main.append(h("div", { class: "head" }, h("h1", {}, `Payroll of ${period(chosen)} (${chosen})`),
                link("/settlements", "every period")));
  const state = section(main, "Status", { id: "state" });
  const grid = h("div", { class: "grid" });
  main.append(grid);
  const act = section(grid, "Approve or reject", { id: "act" });
  act.body.append(actions(chosen, refresh));
  const files = section(grid, "Payroll files", { id: "files" });
  files.body.append(exports(chosen, refresh));
  const statements = section(main, "Statements", { id: "statements" });
  const audit = section(main, "Audit log of this period", { id: "audit" });

  return (round) => Promise.all([
    (async () => {
      await fill(round, state, () => api(`/v1/settlements/${q(chosen)}`), (settled) => {
        statements.body.replaceChildren(drawStatements(settled)); // the same read: drawn with it
        return drawState(settled);
      });
      statements.root.classList.toggle("stale", state.root.classList.contains("stale"));
    })(),
    fill(round, audit, () => api(`/v1/audit?period=${q(chosen)}&limit=1000`), drawAudit),
  ]);
}
