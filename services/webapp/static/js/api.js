// The HTTP API of SPEC §6, called with the signed-in token. The token lives in this tab's sessionStorage only:
// it is sent in the Authorization header, never put in a URL, and gone when the tab closes.

const KEY = "convergence.token";

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  signIn(token) { sessionStorage.setItem(KEY, token); },
  signOut() { sessionStorage.removeItem(KEY); },
};

/** An answer other than success: `status` 0 when the API did not answer at all. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** Whether the failure is the service's (unreachable, 5xx): the data shown is then stale. */
  get outage() { return this.status === 0 || this.status >= 500; }
}

async function send(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(path, { method, headers, cache: "no-store",
                               body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "unreachable", "the API does not answer");
  }
}

async function failure(response) {
  try {
    const { error } = await response.json();
    return new ApiError(response.status, error.code, error.message);
  } catch {
    return new ApiError(response.status, "error", response.statusText || `HTTP ${response.status}`);
  }
}

/** The JSON body of a successful answer; an `ApiError` otherwise. */
export async function api(path, options) {
  const response = await send(path, options);
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A file of the API as a Blob, with the response's headers (payroll pulls). */
export async function file(path) {
  const response = await send(path);
  if (!response.ok) throw await failure(response);
  return { blob: await response.blob(), headers: response.headers };
}

/** `/healthz`: its body whether every part is ready (200) or not (503). */
export async function health() {
  const response = await send("/healthz");
  if (response.status !== 200 && response.status !== 503) throw await failure(response);
  return response.json();
}

/** The gauges of `/metrics` (Prometheus text) named in `names`, by name and labels. */
export async function gauges(names) {
  const response = await send("/metrics");
  if (!response.ok) throw await failure(response);
  const values = {};
  for (const line of (await response.text()).split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match && names.includes(match[1])) values[match[1] + (match[2] || "")] = Number(match[3]);
  }
  return values;
}

export const q = encodeURIComponent;
