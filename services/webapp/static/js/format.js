// How numbers read: the API's decimals are strings, exact; they are grouped and signed here as text, never
// through a float, so what is shown is what the API said to the last digit.

const POINTS = "PTS";
const RATIOS = new Set(["retention_rate", "fcr_rate", "attainment"]);
const MINUS = "\u2212";

/** `-1234567.5` as `−1,234,567.5`: thousands separators, the digits kept as given. */
export function grouped(text) {
  const value = String(text);
  const negative = value.startsWith("-");
  const [whole, fraction] = (negative ? value.slice(1) : value).split(".");
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? MINUS : ""}${digits}${fraction === undefined ? "" : `.${fraction}`}`;
}

/** An amount in its currency: `3,118.25 USD`; loyalty points as points: `1,250 pts`. */
export function money(amount, currency) {
  if (amount === null || amount === undefined) return "–";
  return currency === POINTS ? `${grouped(amount)} pts` : `${grouped(amount)} ${currency}`;
}

/** A ratio (`0.875`) as a percentage (`87.5%`). */
export function percent(text) {
  if (text === null || text === undefined) return "–";
  const value = Number(text) * 100;
  return `${value.toLocaleString("en-US", { maximumFractionDigits: 2 })}%`;
}

/** A decimal grouped, without trailing zeros (`179707.600000` is `179,707.6`). */
export function decimal(text) {
  return grouped(String(text).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, ""));
}

/** A measure's value as its kind reads: ratios as percentages, amounts and counts as decimals. */
export function measure(name, value) {
  if (value === null || value === undefined) return "no data";
  return RATIOS.has(name) ? percent(value) : decimal(value);
}

/** A measure a line used, as the API names it (`net_revenue@90d/team`, `attainment`, `tier`), with its value. */
export function used(key, value) {
  const [name, where] = key.split("@");
  const shown = value === null ? "no data" : /^-?\d+(\.\d+)?$/.test(value) ? measure(name, value) : value;
  return `${label(name)}${where ? ` (${where})` : ""} ${shown}`;
}

/** `net_revenue` as `net revenue`. */
export function label(name) {
  return String(name).replaceAll("_", " ");
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `2026-03` as `Mar 2026`, `2026-Q1` as `Q1 2026`. */
export function period(text) {
  const [year, part] = String(text).split("-");
  return part.startsWith("Q") ? `${part} ${year}` : `${MONTHS[Number(part) - 1]} ${year}`;
}

/** An ISO time as `2026-03-31 16:23 UTC`: one zone for everyone, the one periods are cut in. */
export function time(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  return `${moment.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The periods of a kind ending with `last`, newest first. */
export function periodsBefore(last, count) {
  const [year, part] = last.split("-");
  const quarter = part.startsWith("Q");
  const step = quarter ? 3 : 1;
  let index = Number(year) * 12 + (quarter ? (Number(part.slice(1)) - 1) * 3 : Number(part) - 1);
  const periods = [];
  for (let i = 0; i < count; i += 1, index -= step) {
    const y = Math.floor(index / 12), m = index % 12;
    periods.push(quarter ? `${y}-Q${m / 3 + 1}` : `${y}-${String(m + 1).padStart(2, "0")}`);
  }
  return periods;
}

/** The current UTC month (`YYYY-MM`) or quarter (`YYYY-Qn`). */
export function current(kind) {
  const now = new Date();
  return kind === "quarter" ? `${now.getUTCFullYear()}-Q${Math.floor(now.getUTCMonth() / 3) + 1}`
    : now.toISOString().slice(0, 7);
}
