// The people: every party the system knows, by kind, with a way to each one's page and each manager's team.

import { api, q } from "../api.js";
import { h, link, nodes, section, table } from "../dom.js";
import { label } from "../format.js";
import { fill } from "../live.js";

const KINDS = ["workforce", "partner", "customer", "provider"];

/** Every party, page by page. */
export async function everyone() {
  const parties = [];
  let after = null;
  do {
    const page = await api(`/v1/parties?limit=1000${after ? `&after=${q(after)}` : ""}`);
    parties.push(...page.parties);
    after = page.next_after;
  } while (after);
  return parties;
}

export default function home(main) {
  main.append(h("h1", {}, "People"));
  const filter = h("input", { type: "search", name: "filter", placeholder: "Filter by id, name or role",
                              "aria-label": "Filter people" });
  main.append(h("div", { class: "toolbar" }, filter));
  const boards = section(main, "Leaderboards", { id: "boards" });
  const people = section(main, "Who is paid", { id: "people" });
  let parties = [];

  function drawPeople() {
    const managers = new Set(parties.map((party) => party.manager_id).filter(Boolean));
    const wanted = filter.value.trim().toLowerCase();
    const shown = parties.filter((party) => !wanted || [party.party_id, party.name, party.role]
      .some((text) => text && text.toLowerCase().includes(wanted)));
    return KINDS.map((kind) => {
      const found = shown.filter((party) => party.kind === kind)
        .sort((a, b) => a.party_id.localeCompare(b.party_id, "en", { numeric: true }));
      if (!found.length) return [];
      const heading = h("h3", {}, `${label(kind)} (${found.length})`);
      if (kind !== "workforce") { // no roles nor managers: the links alone
        return [heading, h("ul", { class: "chips", "data-kind": kind }, found.map((party) => h("li", {},
          link(`/parties/${q(party.party_id)}`, party.name ? `${party.name} (${party.party_id})` : party.party_id))))];
      }
      return [heading, table(["id", "name", "role", "manager", ""], found.map((party) => [
        link(`/parties/${q(party.party_id)}`, party.party_id), party.name || "", label(party.role || ""),
        party.manager_id ? link(`/teams/${q(party.manager_id)}`, party.manager_id) : "",
        managers.has(party.party_id) || party.role === "manager" ? link(`/teams/${q(party.party_id)}`, "team") : ""]),
      { "data-kind": kind })];
    });
  }

  filter.addEventListener("input", () => people.body.replaceChildren(...nodes(drawPeople())));

  return (round) => Promise.all([
    fill(round, people, everyone, (found) => { parties = found; return drawPeople(); }),
    fill(round, boards, () => api("/v1/plans"), (plans) => h("ul", { class: "chips" },
      plans.scorecards.map((card) => h("li", {}, link(`/leaderboards/${q(card)}`, card))))),
  ]);
}
