// LwM2M (#/lwm2m): registered devices; a device's page (#/lwm2m/{ep}) with its object tree (from its
// registration and the object definitions), read/write/execute/observe/cancel per instance and resource
// (POST .../commands answers as lwm2m/{ep}/up/resp would), and live messages from
// /api/v1/stream?filter=lwm2m/{ep}/up/#.

import { api, query, stream } from "./api.js";
import { actionButton, debounce, h, pager, table, when } from "./dom.js";

const LIMIT = 50;
const NOTIFICATIONS = 50; // kept on the page
let reqId = Math.floor(Date.now() % 1e6);

const deviceLink = (ep) => `#/lwm2m/${encodeURIComponent(ep)}`;

export function list(view, ctx) {
  const state = { q: "", offset: 0 };
  const search = h("input#lwm2m-q", { type: "search", placeholder: "endpoint", "aria-label": "search devices" });
  const results = h("div#lwm2m-results");
  view.append(h("section.page#lwm2m-page", {}, h("h2", {}, "LwM2M devices"), h("div.toolbar", {}, search), results));
  const load = async () => {
    let answer;
    try {
      answer = await api("/api/v1/lwm2m/devices" + query({ q: state.q, offset: state.offset, limit: LIMIT }));
    } catch (err) {
      results.replaceChildren(h("p.error", {}, err.status === 404 ? "LwM2M is not enabled on this gateway"
        : `error ${err.status || ""}: ${err.message}`));
      return;
    }
    const total = answer.total ?? answer.devices.length;
    results.replaceChildren(table([
      { label: "endpoint", value: (d) => h("a", { href: deviceLink(d.endpoint) }, d.endpoint) },
      { label: "address", value: (d) => d.address },
      { label: "version", value: (d) => d.version },
      { label: "binding", value: (d) => d.binding + (d.queue_mode ? " (queue mode)" : "") },
      { label: "lifetime", value: (d) => d.lifetime == null ? "" : `${d.lifetime} s` },
      { label: "registered", value: (d) => when(d.registered_at) },
      { label: "last update", value: (d) => when(d.last_update) },
      { label: "objects", value: (d) => (d.objects || []).join(" ") },
    ], answer.devices, { id: "lwm2m-devices", empty: "no device registered",
                         rowAttrs: (d) => ({ dataset: { endpoint: d.endpoint }, class: "link-row",
                                             on: { click: (e) => { if (e.target.tagName !== "A") ctx.go(deviceLink(d.endpoint)); } } }) }),
    pager(total, state.offset, LIMIT, (offset) => { state.offset = offset; load(); }));
  };
  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.offset = 0; load(); }, 300));
  load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}

/** {objectId: [instance paths]} from registered paths such as "/3/0", "/5" (no instance). */
function objectsOf(paths) {
  const out = new Map();
  for (const path of paths || []) {
    const [objectId, instance] = path.split("/").filter(Boolean);
    if (!out.has(objectId)) out.set(objectId, []);
    if (instance !== undefined) out.get(objectId).push(`/${objectId}/${instance}`);
  }
  return out;
}

function shown(value) {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

export function device(view, ctx, endpoint) {
  const result = h("p#lwm2m-result.muted", { role: "status", "aria-live": "polite" });
  const answerBox = h("pre#lwm2m-answer", {}, "answers appear here");
  const tree = h("div#lwm2m-tree");
  const facts = h("div#lwm2m-facts");
  const live = h("ul#lwm2m-notifications.notifications");
  const liveState = h("span#lwm2m-live.muted", {}, "connecting…");
  const root = h("section.page#lwm2m-device", { dataset: { endpoint } },
    h("p", {}, h("a", { href: "#/lwm2m" }, "‹ all devices")),
    h("h2", {}, "Device ", h("code", {}, endpoint)), facts,
    h("div.columns.device-columns", {},
      h("section.card", {}, h("h3", {}, "Objects"), tree),
      h("section.card.side", {}, h("h3", {}, "Answer"), result, answerBox,
        h("h3", {}, "Live ", liveState), live)));
  view.append(root);

  const setValue = (path, value) => {
    for (const cell of root.querySelectorAll(`[data-value-of="${CSS.escape(path)}"]`)) cell.textContent = shown(value);
  };
  const showContent = (data) => {
    for (const item of data?.content || []) if (item.path !== undefined) setValue(item.path, item.value);
  };

  const command = async (msgType, data) => {
    const body = { reqID: ++reqId, msgType, data };
    result.classList.remove("error");
    result.textContent = `${msgType} ${data.path}…`;
    try {
      const answer = await api(`/api/v1/lwm2m/devices/${encodeURIComponent(endpoint)}/commands`, { method: "POST", body });
      const d = answer.data || {};
      result.textContent = `${msgType} ${data.path}: ${d.code || ""} ${d.codeMsg || ""}`.trim();
      result.dataset.code = d.code || "";
      answerBox.textContent = JSON.stringify(answer, null, 2);
      showContent(d);
    } catch (err) {
      result.classList.add("error");
      result.dataset.code = "";
      result.textContent = `${msgType} ${data.path}: error ${err.status || ""}: ${err.message}`;
    }
  };

  const opsButtons = (path, ops) => {
    const buttons = [];
    if (ops.includes("R")) {
      buttons.push(actionButton(ctx, "Read", () => command("read", { path }), { class: "small", dataset: { op: "read" } }));
      buttons.push(actionButton(ctx, "Observe", () => command("observe", { path }), { class: "small", dataset: { op: "observe" } }));
      buttons.push(actionButton(ctx, "Cancel", () => command("cancel-observe", { path }), { class: "small", dataset: { op: "cancel-observe" },
                                                                                       title: "cancel the observation" }));
    }
    if (ops.includes("E")) buttons.push(actionButton(ctx, "Execute", () => command("execute", { path }), { class: "small", dataset: { op: "execute" } }));
    if (ops.includes("W")) {
      const input = h("input.write", { "aria-label": `value for ${path}`, dataset: { writeFor: path }, disabled: ctx.role !== "admin" });
      const write = () => command("write", { path, value: input.value });
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") write(); });
      buttons.push(h("span.write", {}, input, actionButton(ctx, "Write", write, { class: "small", dataset: { op: "write" } })));
    }
    return h("span.actions", {}, buttons);
  };

  const render = (d) => {
    facts.replaceChildren(h("p.muted", {}, [`${d.address ?? ""}`, `LwM2M ${d.version ?? "?"}`, `binding ${d.binding ?? "?"}`,
      d.queue_mode ? "queue mode" : null, d.lifetime != null ? `lifetime ${d.lifetime} s` : null,
      d.last_update ? `last update ${when(d.last_update)}` : null].filter(Boolean).join(" · ")));
    const definitions = d.definitions || {};
    const sections = [];
    for (const [objectId, instances] of [...objectsOf(d.objects)].sort((a, b) => Number(a[0]) - Number(b[0]))) {
      const def = definitions[objectId];
      const resources = Object.entries(def?.resources || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
      const blocks = (instances.length ? instances : [`/${objectId}`]).map((instancePath) => h("div.instance", { dataset: { path: instancePath } },
        h("h5", {}, h("code", {}, instancePath), " ", opsButtons(instancePath, "R")),
        resources.length ? table([
          { label: "id", value: ([id]) => id },
          { label: "resource", value: ([, r]) => r.name + (r.multiple ? " (multiple)" : "") },
          { label: "type", value: ([, r]) => r.type },
          { label: "ops", value: ([, r]) => r.operations },
          { label: "value", value: ([id]) => h("span.value", { dataset: { valueOf: `${instancePath}/${id}` } }), className: "value" },
          { label: "", value: ([id, r]) => opsButtons(`${instancePath}/${id}`, r.operations || "") },
        ], resources, { rowAttrs: ([id]) => ({ dataset: { path: `${instancePath}/${id}` } }) })
          : h("p.muted", {}, "no definition known for this object")));
      // Security (0) and Server (1) are the device's plumbing: folded until asked for.
      sections.push(h("details.object", { open: !["0", "1"].includes(objectId), dataset: { object: objectId } },
        h("summary", {}, h("strong", {}, `/${objectId}`), ` ${def?.name || "unknown object"}`), blocks));
    }
    tree.replaceChildren(...(sections.length ? sections : [h("p.muted", {}, "no object registered")]));
  };

  (async () => {
    try {
      render(await api(`/api/v1/lwm2m/devices/${encodeURIComponent(endpoint)}`));
      root.dataset.loaded = "true";
    } catch (err) {
      tree.replaceChildren(h("p.error", {}, err.status === 404 ? "No such device is registered." : `error ${err.status || ""}: ${err.message}`));
    }
  })();

  const close = stream("/api/v1/stream" + query({ filter: `lwm2m/${endpoint}/up/#` }), (name, data) => {
    if (name !== "message") return;
    let message, doc = null;
    try {
      message = JSON.parse(data);
      doc = JSON.parse(message.payload_text ?? (message.payload_encoding === "text" ? message.payload : ""));
    } catch (err) {
      if (!message) return;
    }
    const kind = message.topic.split("/").slice(3).join("/");
    if (doc && kind === "notify") showContent(doc.data);
    const text = doc ? JSON.stringify(doc.data ?? doc) : String(message.payload_text ?? message.payload ?? "");
    live.prepend(h("li", { dataset: { kind } }, h("span.muted", {}, new Date().toLocaleTimeString()), " ",
                   h("strong", {}, kind), " ", h("code", {}, text.length > 300 ? text.slice(0, 300) + "…" : text)));
    while (live.children.length > NOTIFICATIONS) live.lastChild.remove();
  }, (state) => {
    liveState.textContent = state === "open" ? "(connected)" : state === "refused" ? "(unavailable)" : "(reconnecting…)";
    liveState.dataset.state = state;
  });
  return close;
}
