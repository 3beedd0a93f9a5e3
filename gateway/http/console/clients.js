// Clients: a searchable, filterable, server-paged table of connected clients (#/clients) and one
// client's page (#/clients/{id}?protocol=...) with its subscriptions, session, will, last errors and a kick.

import { api, query } from "./api.js";
import { actionButton, confirmDialog, debounce, duration, h, outcome, pager, table, when } from "./dom.js";

const DEFAULT_LIMIT = 50; // rows a page (#/clients?limit=N changes it)
const REFRESH = 5000;
const PROTOCOLS = ["mqtt", "amqp", "coap"];
const previous = new Map(); // "protocol/id" -> {time, in, out}: counters of the last load, for rates

export function link(id, protocol) {
  return `#/clients/${encodeURIComponent(id)}${protocol ? "?protocol=" + encodeURIComponent(protocol) : ""}`;
}

function rate(row, now) {
  const key = `${row.protocol}/${row.id}`;
  const last = previous.get(key);
  previous.set(key, { time: now, in: row.messages_in, out: row.messages_out });
  if (!last || row.messages_in == null || now <= last.time) return null;
  const seconds = (now - last.time) / 1000;
  return `${((row.messages_in - last.in) / seconds).toFixed(1)} / ${((row.messages_out - last.out) / seconds).toFixed(1)}`;
}

/** #/clients: search (debounced), protocol filter, paging with offset/limit. */
export function list(view, ctx, params) {
  const state = { q: params.get("q") || "", protocol: params.get("protocol") || "", offset: 0 };
  const LIMIT = Math.min(1000, Math.max(1, Number(params.get("limit")) || DEFAULT_LIMIT));
  const search = h("input#clients-q", { type: "search", placeholder: "id, address or user", value: state.q,
                                        "aria-label": "search clients" });
  const protocol = h("select#clients-protocol", { "aria-label": "protocol" }, h("option", { value: "" }, "all protocols"),
                     PROTOCOLS.map((p) => h("option", { value: p, selected: p === state.protocol }, p)));
  const results = h("div#clients-results", { "aria-live": "polite" });
  const root = h("section.page#clients-page", {}, h("h2", {}, "Clients"),
                 h("div.toolbar", {}, search, protocol), results);
  view.append(root);

  let loading = 0;
  const load = async () => {
    const mine = ++loading;
    let answer;
    try {
      answer = await api("/api/v1/clients" + query({ q: state.q, protocol: state.protocol, offset: state.offset,
                                                     limit: LIMIT, sort: "id" }));
    } catch (err) {
      results.replaceChildren(h("p.error", {}, `error ${err.status || ""}: ${err.message}`));
      return;
    }
    if (mine !== loading) return;  // a newer search answered first
    let rows = answer.clients;
    let total = answer.total;
    if (total === undefined) {  // a gateway without server-side search: filter and page here
      const needle = state.q.toLowerCase();
      rows = rows.filter((c) => !needle || [c.id, c.address, c.username].some((v) => String(v ?? "").toLowerCase().includes(needle)));
      total = rows.length;
      rows = rows.slice(state.offset, state.offset + LIMIT);
    }
    if (rows.length === 0 && state.offset > 0 && total > 0) {
      state.offset = Math.max(0, Math.floor((total - 1) / LIMIT) * LIMIT);
      load();
      return;
    }
    const now = Date.now();
    results.replaceChildren(
      table([
        { label: "client", value: (c) => h("a", { href: link(c.id, c.protocol) }, c.id) },
        { label: "protocol", value: (c) => c.protocol },
        { label: "address", value: (c) => c.address },
        { label: "user", value: (c) => c.username },
        { label: "connected", value: (c) => c.connected_since ? duration(Date.now() / 1000 - c.connected_since) : "" },
        { label: "subscriptions", value: (c) => (c.subscriptions || []).length, className: "num" },
        { label: "queued", value: (c) => c.queue_depth, className: "num" },
        { label: "msg/s in / out", value: (c) => rate(c, now) ?? (c.messages_in == null ? "" : "…"), className: "num" },
      ], rows, { id: "clients-table", empty: "no client matches",
                 rowAttrs: (c) => ({ dataset: { client: c.id, protocol: c.protocol }, class: "link-row",
                                     on: { click: (e) => { if (e.target.tagName !== "A") ctx.go(link(c.id, c.protocol)); } } }) }),
      h("p.muted#clients-total", { dataset: { total } }, `${total} client${total === 1 ? "" : "s"}`),
      pager(total, state.offset, LIMIT, (offset) => { state.offset = offset; load(); }));
  };
  const reload = debounce(() => { state.q = search.value.trim(); state.offset = 0; load(); }, 300);
  search.addEventListener("input", reload);
  protocol.addEventListener("change", () => { state.protocol = protocol.value; state.offset = 0; load(); });
  load();
  const timer = setInterval(load, REFRESH);
  return () => clearInterval(timer);
}

function facts(pairs) {
  return h("dl.facts", {}, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { fact: k } }, v ?? "—")]));
}

/** #/clients/{id}: one connected client. */
export function detail(view, ctx, id, params) {
  const protocol = params.get("protocol") || "";
  const body = h("div#client-detail");
  const result = h("p#client-result.muted", { role: "status" });
  const kick = actionButton(ctx, "Kick", async () => {
    if (!(await confirmDialog(`Disconnect ${id}${protocol ? ` (${protocol})` : ""}? It may reconnect.`, { action: "Kick" }))) return;
    const answer = await outcome(result, api(`/api/v1/clients/${encodeURIComponent(id)}` + query({ protocol }), { method: "DELETE" }),
                                 (a) => `kicked ${a.kicked} (${a.protocols.join(", ")})`);
    if (answer) load();
  }, { id: "client-kick", class: "danger" });
  const root = h("section.page#client-page", { dataset: { client: id } },
    h("p", {}, h("a", { href: "#/clients" }, "‹ all clients")),
    h("h2", {}, "Client ", h("code", {}, id), protocol ? ` · ${protocol}` : ""),
    h("div.toolbar", {}, kick), result, body);
  view.append(root);

  const load = async () => {
    let c;
    try {
      c = await api(`/api/v1/clients/${encodeURIComponent(id)}` + query({ protocol }));
    } catch (err) {
      if (err.status !== 404) {
        body.replaceChildren(h("p.error", {}, `error ${err.status || ""}: ${err.message}`));
        return;
      }
      root.dataset.connected = "false";
      kick.disabled = true;
      body.replaceChildren(h("p#client-gone", {}, "Not connected (any more)."));
      return;
    }
    root.dataset.connected = "true";
    kick.disabled = ctx.role !== "admin";
    const subs = c.subscriptions_detail || (c.subscriptions || []).map((f) => ({ filter: f }));
    body.replaceChildren(
      h("div.columns", {},
        h("section.card", {}, h("h3", {}, "Connection"), facts([
          ["address", c.address], ["user", c.username], ["listener", c.listener],
          ["connected since", when(c.connected_since)], ["protocol level", c.protocol_level],
          ["keep alive", c.keep_alive == null ? undefined : `${c.keep_alive} s`], ["vhost", c.vhost],
          ["messages in", c.messages_in], ["messages out", c.messages_out],
          ["queued", c.queue_depth], ["in flight", c.inflight]])),
        h("section.card", {}, h("h3", {}, "Session"), facts([
          ["clean start", c.clean_start == null ? undefined : String(c.clean_start)],
          ["session expiry", c.session_expiry === undefined ? undefined : c.session_expiry === null ? "never"
            : `${c.session_expiry} s`]]),
          h("h3", {}, "Will"), c.will ? facts([["topic", c.will.topic], ["QoS", c.will.qos], ["retain", String(c.will.retain)],
            ["delay", `${c.will.delay ?? 0} s`], ["payload", `${c.will.payload_bytes} bytes`]]) : h("p.muted#client-will", {}, "none"))),
      h("h3", {}, `Subscriptions (${subs.length})`),
      table([
        { label: "filter", value: (s) => s.filter ?? s.queue },
        { label: "QoS", value: (s) => s.qos },
        { label: "no local", value: (s) => s.no_local == null ? "" : String(s.no_local) },
        { label: "retain as published", value: (s) => s.retain_as_published == null ? "" : String(s.retain_as_published) },
        { label: "retain handling", value: (s) => s.retain_handling },
        { label: "subscription id", value: (s) => s.subscription_id },
      ], subs, { id: "client-subscriptions", empty: "no subscription", rowAttrs: (s) => ({ dataset: { filter: s.filter ?? s.queue ?? "" } }) }),
      h("h3", {}, "Last errors"),
      table([
        { label: "time", value: (e) => when(e.time) },
        { label: "message", value: (e) => e.message },
      ], c.last_errors || [], { id: "client-errors", empty: "none seen" }));
  };
  load();
  const timer = setInterval(load, REFRESH);
  return () => clearInterval(timer);
}
