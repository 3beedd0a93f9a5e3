// Overview: connection counts, the live rate chart (from the app's /api/v1/events stream), the last hour
// from /api/v1/history, top topics, the topic tree, the publish form, and the cluster and bridges cards
// (shown alone on #/cluster). The markup is in index.html; this module fills it.

import { api, ApiError } from "./api.js";
import { drawLines, Palette } from "./charts.js";
import { duration, h, setText } from "./dom.js";

const HISTORY = 60; // samples (seconds) on the live rate chart
const history = new Map(); // pair -> [rates]
const pairs = new Palette();
const protocols = new Palette();
const $ = (id) => document.getElementById(id);
let selectedTopic = null;
let timers = [];
let ctx = null;

/** Called once: the stats stream feeds the cards whether or not the page is shown. */
export function init(appCtx) {
  ctx = appCtx;
  appCtx.onStats((stats) => {
    renderConnections(stats);
    renderRates(stats);
    renderTopTopics(stats);
  });
  $("publish-form").addEventListener("submit", publish);
}

/** Show the overview (`only` "cluster": the cluster and bridges cards alone); returns the cleanup. */
export function show(appCtx, only = null) {
  ctx = appCtx;
  const main = $("overview");
  main.dataset.only = only || "";
  $("publish-card").hidden = appCtx.role !== "admin";
  const every = (fn, ms) => {
    fn();
    timers.push(setInterval(fn, ms));
  };
  if (!only) {
    every(refreshTree, 2000);
    every(refreshHistory, 5000);
  }
  every(refreshCluster, 2000);
  every(refreshBridges, 2000);
  return () => {
    timers.forEach(clearInterval);
    timers = [];
  };
}

function renderConnections(stats) {
  const list = $("connections");
  for (const [protocol, count] of Object.entries(stats.connections)) {
    let item = list.querySelector(`li[data-protocol="${CSS.escape(protocol)}"]`);
    if (!item) {
      item = h("li", { dataset: { protocol } }, h("span.count"), h("span.name", {}, protocol));
      list.append(item);
    }
    setText(item.querySelector(".count"), count);
  }
  const sum = (values) => Object.values(values).reduce((a, b) => a + b, 0);
  setText($("messages-in"), sum(stats.messages_received));
  setText($("messages-out"), sum(stats.messages_sent));
  setText($("retained"), stats.retained);
  setText($("subscriptions"), stats.subscriptions);
  setText($("uptime"), `up ${Math.round(stats.uptime)} s · v${stats.version}`);
}

function renderRates(stats) {
  for (const pair of Object.keys(stats.deliveries)) {
    if (!history.has(pair)) history.set(pair, []);
  }
  for (const [pair, samples] of history) {
    samples.push(stats.rates[pair] || 0);
    if (samples.length > HISTORY) samples.shift();
  }
  const legend = $("legend");
  for (const [pair, samples] of history) {
    let item = legend.querySelector(`li[data-pair="${CSS.escape(pair)}"]`);
    if (!item) {
      item = h("li", { dataset: { pair } }, h("span.swatch", { style: `background:${pairs.of(pair)}` }),
               h("span.label", {}, pair), " ", h("span.rate"));
      legend.append(item);
    }
    setText(item.querySelector(".rate"), `${samples[samples.length - 1].toFixed(1)}/s · ${stats.deliveries[pair]} total`);
  }
  drawLines($("rates"), [...history].map(([pair, values]) => ({ color: pairs.of(pair), values })), { slots: HISTORY });
}

function renderTopTopics(stats) {
  $("top-topics").querySelector("tbody").replaceChildren(...stats.top_topics.map(({ topic, messages }) =>
    h("tr", { dataset: { topic } }, h("td.topic", {}, topic), h("td.messages", {}, messages))));
}

async function refreshHistory() {
  let answer;
  try {
    answer = await api("/api/v1/history?minutes=60");
  } catch (err) {
    setText($("history-note"), err instanceof ApiError && err.status === 404
      ? "this gateway keeps no history" : `history unavailable: ${err.message}`);
    return;
  }
  const samples = answer.samples || [];
  const slots = Math.max(2, Math.round(3600 / (answer.interval || 10)));
  setText($("history-note"), samples.length ? `${samples.length} samples, one every ${answer.interval} s`
    : "no samples yet");
  const names = new Set();
  for (const sample of samples) {
    for (const key of ["messages_in", "messages_out", "connections"]) Object.keys(sample[key] || {}).forEach((p) => names.add(p));
  }
  const first = samples.length ? new Date(samples[0].time * 1000).toLocaleTimeString() : "";
  const labels = samples.length ? [first, "now"] : null;
  for (const [key, canvas] of [["messages_in", "history-in"], ["messages_out", "history-out"], ["connections", "history-connections"]]) {
    const series = [...names].sort().map((p) => ({ color: protocols.of(p), values: samples.map((s) => (s[key] || {})[p] ?? 0) }));
    drawLines($(canvas), series, { slots: Math.max(slots, samples.length), xLabels: labels, fit: true });
  }
  $("history-card").dataset.samples = String(samples.length);
  $("history-legend").replaceChildren(...[...names].sort().map((p) => h("li", { dataset: { protocol: p } },
    h("span.swatch", { style: `background:${protocols.of(p)}` }), p)));
}

async function refreshTree() {
  let topics;
  try {
    topics = (await api("/api/v1/topics")).topics;
  } catch (err) {
    return;
  }
  const root = {};
  for (const entry of topics) {
    let node = root;
    for (const level of entry.topic.split("/")) node = (node[level] ||= {});
    node["\u0000"] = entry;
  }
  const build = (node, prefix) => {
    const list = h("ul");
    for (const level of Object.keys(node).filter((k) => k !== "\u0000").sort()) {
      const child = node[level];
      const path = prefix ? `${prefix}/${level}` : level;
      const item = h("li", { dataset: { path } });
      const entry = child["\u0000"];
      if (entry) {
        item.dataset.topic = entry.topic;
        item.append(h("span.leaf", { tabindex: 0, role: "button", on: {
          click: () => showTopic(entry),
          keydown: (event) => { if (event.key === "Enter" || event.key === " ") showTopic(entry); },
        } }, level));
        item.append(h("span.value", {}, entry.payload_encoding === "text" ? entry.payload : `(base64) ${entry.payload}`));
        if (entry.topic === selectedTopic) showTopic(entry);
      } else {
        item.append(h("span", {}, level));
      }
      if (Object.keys(child).some((k) => k !== "\u0000")) item.append(build(child, path));
      list.append(item);
    }
    return list;
  };
  $("tree").replaceChildren(build(root, ""));
}

function showTopic(entry) {
  selectedTopic = entry.topic;
  $("topic-value").textContent = `${entry.topic}${entry.retained ? " (retained)" : ""}\n` +
    `qos ${entry.qos} · from ${entry.origin}${entry.content_type ? " · " + entry.content_type : ""}\n\n${entry.payload}`;
}

async function publish(event) {
  event.preventDefault();
  const body = {
    topic: $("publish-topic").value,
    payload: $("publish-payload").value,
    qos: Number($("publish-qos").value),
    retain: $("publish-retain").checked,
  };
  try {
    const answer = await api("/api/v1/publish", { method: "POST", body });
    $("publish-result").textContent = `published to ${answer.topic}: ${answer.deliveries} deliveries`;
    refreshTree();
  } catch (err) {
    $("publish-result").textContent = `error: ${err.message}`;
    if (err.status === 403 && ctx) ctx.showAccess(err);
  }
}

function rows(tbody, items, key, cells) {
  tbody.replaceChildren(...items.map((item) => h("tr", { dataset: key(item) }, cells(item).map((value) => h("td", {}, String(value))))));
}

async function refreshCluster() {
  let cluster;
  try {
    cluster = await api("/api/v1/cluster");
  } catch (err) {
    return;  // an older gateway, or no rights: the card stays as it is
  }
  $("overview").classList.toggle("has-cluster", Boolean(cluster.node));
  $("overview").classList.add("checked-cluster");
  if (!cluster.node) return;  // single-node mode: no card
  $("cluster-card").hidden = false;
  setText($("cluster-node"), cluster.node);
  setText($("cluster-nats"), cluster.nats.connected ? `connected to ${cluster.nats.server}` : "disconnected");
  rows(document.querySelector("#cluster-nodes tbody"), cluster.nodes, (node) => ({ node: node.name }), (node) => [
    node.name + (node.self ? " (this one)" : ""), duration(node.uptime || 0), node.connections ?? "",
    node.published ?? "", node.self ? "now" : `${Number(node.last_heartbeat_s).toFixed(1)} s ago`]);
}

async function refreshBridges() {
  let answer;
  try {
    answer = await api("/api/v1/bridges");
  } catch (err) {
    return;  // an older gateway, or no rights: the card stays as it is
  }
  $("overview").classList.toggle("has-bridges", answer.bridges.length > 0);
  $("overview").classList.add("checked-bridges");
  if (!answer.bridges.length) return;  // no bridge configured: no card
  $("bridges-card").hidden = false;
  rows(document.querySelector("#bridges tbody"), answer.bridges,
       (bridge) => ({ bridge: bridge.name, connected: String(bridge.connected) }), (bridge) => [
    `${bridge.name} (${bridge.kind})`, bridge.url, bridge.connected ? "connected" : "down", bridge.queued,
    bridge.forwarded, bridge.received, Object.values(bridge.dropped).reduce((a, b) => a + b, 0), bridge.last_error || ""]);
}
