// Retained messages (#/retained): browse by topic filter or prefix, view a value as text, pretty JSON or
// hex, clear one topic or everything a filter matches (after a confirmation).

import { api, query } from "./api.js";
import { actionButton, confirmDialog, h, outcome, table } from "./dom.js";

/** A filter from what was typed: a filter as is, a prefix ("plant/line1") as "plant/line1/#". */
export function toFilter(text) {
  const value = text.trim();
  if (!value) return "#";
  if (value.includes("#") || value.includes("+")) return value;
  return value.replace(/\/+$/, "") + "/#";
}

function bytesOf(message) {
  if (message.payload_encoding === "text") return new TextEncoder().encode(message.payload);
  const binary = atob(message.payload || "");
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function textOf(message, bytes) {
  if (typeof message.payload_text === "string") return message.payload_text;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    return null;
  }
}

export function hex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = [...bytes.slice(i, i + 16)];
    const ascii = chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${chunk.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

function prettyJson(text) {
  if (text === null) return null;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (err) {
    return null;
  }
}

export function render(view, ctx, params) {
  const input = h("input#retained-filter", { value: params.get("filter") || "#", "aria-label": "topic filter or prefix",
                                             placeholder: "filter (a/+/c, a/#) or prefix (a/b)" });
  const results = h("div#retained-results");
  const valueBox = h("section.card#retained-value", { hidden: true });
  const result = h("p#retained-result.muted", { role: "status" });
  const form = h("form.toolbar", { on: { submit: (e) => { e.preventDefault(); load(); } } }, input,
                 h("button#retained-browse", { type: "submit" }, "Browse"),
                 actionButton(ctx, "Clear all matching", () => clear(toFilter(input.value)), { id: "retained-clear-all", class: "danger" }));
  view.append(h("section.page#retained-page", {}, h("h2", {}, "Retained messages"), form, result, results, valueBox));

  const clear = async (topicFilter) => {
    if (!(await confirmDialog(`Clear the retained messages matching ${topicFilter}?`, { action: "Clear" }))) return;
    const answer = await outcome(result, api("/api/v1/retained" + query({ topic: topicFilter }), { method: "DELETE" }),
                                 (a) => `cleared ${a.count}: ${a.deleted.join(", ")}`);
    if (answer) {
      valueBox.hidden = true;
      load();
    }
  };

  const show = async (row) => {
    let message = row;
    try {
      message = await api("/api/v1/retained/value" + query({ topic: row.topic }));
    } catch (err) {
      if (err.status !== 404) throw err;  // 404: no value endpoint (older gateway) or gone: show the row
    }
    const bytes = bytesOf(message);
    const text = textOf(message, bytes);
    const json = prettyJson(text);
    const views = { text, json, hex: hex(bytes) };
    const pre = h("pre#retained-payload");
    const buttons = ["text", "json", "hex"].map((mode) => h("button", { type: "button", dataset: { mode },
      disabled: views[mode] === null, on: { click: () => choose(mode) } }, mode === "json" ? "JSON" : mode));
    const choose = (mode) => {
      pre.textContent = views[mode];
      pre.dataset.mode = mode;
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
    };
    valueBox.hidden = false;
    valueBox.dataset.topic = message.topic;
    valueBox.replaceChildren(h("h3", {}, message.topic),
      h("p.muted", {}, `${bytes.length} bytes · QoS ${message.qos}${message.content_type ? " · " + message.content_type : ""}` +
        `${message.origin ? " · from " + message.origin : ""}`),
      h("div.toolbar", { role: "group", "aria-label": "view as" }, buttons,
        actionButton(ctx, "Clear this topic", () => clear(message.topic), { id: "retained-clear", class: "danger" })),
      pre);
    choose(json !== null ? "json" : text !== null ? "text" : "hex");
  };

  const load = async () => {
    let answer;
    try {
      answer = await api("/api/v1/retained" + query({ topic: toFilter(input.value) }));
    } catch (err) {
      results.replaceChildren(h("p.error", {}, `error ${err.status || ""}: ${err.message}`));
      return;
    }
    results.replaceChildren(
      h("p.muted#retained-count", {}, `${answer.count} retained message${answer.count === 1 ? "" : "s"} match ${toFilter(input.value)}`),
      table([
        { label: "topic", value: (m) => h("button.link", { type: "button", on: { click: () => show(m) } }, m.topic) },
        { label: "payload", value: (m) => m.payload_encoding === "text" ? m.payload.slice(0, 60) : "(binary)" },
        { label: "QoS", value: (m) => m.qos },
        { label: "content type", value: (m) => m.content_type },
        { label: "from", value: (m) => m.origin },
      ], answer.retained, { id: "retained-table", empty: "none", rowAttrs: (m) => ({ dataset: { topic: m.topic } }) }));
  };
  load();
}
