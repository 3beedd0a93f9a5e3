// Sessions (#/sessions): offline persistent MQTT sessions, searchable and paged; delete one (its queue
// with it) after a confirmation.

import { api, query } from "./api.js";
import { actionButton, confirmDialog, debounce, h, outcome, pager, table, when } from "./dom.js";

const LIMIT = 50;

export function render(view, ctx) {
  const state = { q: "", offset: 0 };
  const search = h("input#sessions-q", { type: "search", placeholder: "client id", "aria-label": "search sessions" });
  const results = h("div#sessions-results");
  const result = h("p#sessions-result.muted", { role: "status" });
  view.append(h("section.page#sessions-page", {}, h("h2", {}, "Offline sessions"),
    h("p.muted", {}, "Persistent MQTT sessions whose client is not connected: their subscriptions and queued messages wait."),
    h("div.toolbar", {}, search), result, results));

  const remove = async (session) => {
    if (!(await confirmDialog(`Delete the session of ${session.client_id} and its ${session.queued} queued message(s)?`,
                              { action: "Delete session" }))) return;
    const answer = await outcome(result, api(`/api/v1/sessions/${encodeURIComponent(session.client_id)}`, { method: "DELETE" }),
                                 (a) => `deleted the session of ${a.deleted}`);
    if (answer) load();
  };
  const load = async () => {
    let answer;
    try {
      answer = await api("/api/v1/sessions" + query({ q: state.q, offset: state.offset, limit: LIMIT }));
    } catch (err) {
      results.replaceChildren(h("p.error", {}, err.status === 404 ? "this gateway lists no sessions"
        : `error ${err.status || ""}: ${err.message}`));
      return;
    }
    const total = answer.total ?? answer.sessions.length;
    results.replaceChildren(
      table([
        { label: "client", value: (s) => s.client_id },
        { label: "user", value: (s) => s.username },
        { label: "queued", value: (s) => s.queued, className: "num" },
        { label: "subscriptions", value: (s) => Array.isArray(s.subscriptions) ? s.subscriptions.length : s.subscriptions, className: "num" },
        { label: "expires", value: (s) => s.expires_at == null ? "never" : when(s.expires_at) },
        { label: "", value: (s) => actionButton(ctx, "Delete", () => remove(s), { class: "danger small delete" }) },
      ], answer.sessions, { id: "sessions-table", empty: "no offline session",
                            rowAttrs: (s) => ({ dataset: { client: s.client_id } }) }),
      pager(total, state.offset, LIMIT, (offset) => { state.offset = offset; load(); }));
  };
  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.offset = 0; load(); }, 300));
  load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
