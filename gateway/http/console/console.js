// RosettaMQ live console: server-sent events from /api/v1/events, the admin API for the rest.
// No build step, no dependencies. The API token (when [http] api_token is set) is kept in localStorage.
// What the page offers follows the role /api/v1/whoami names: a monitor (read only) sees no actions.
"use strict";

const HISTORY = 60; // samples (seconds) on the rate chart
const COLORS = ["#0b5cad", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#e67700", "#0c8599", "#5c940d"];
const history = new Map(); // pair -> [rates]
const colors = new Map();
let selectedTopic = null;

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = localStorage.getItem("rosettamq-token") || "";
tokenInput.addEventListener("change", () => {
  localStorage.setItem("rosettamq-token", tokenInput.value);
  refreshRole();
  connect();
});

function authHeaders() {
  const token = tokenInput.value;
  return token ? { Authorization: "Bearer " + token } : {};
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error ? body.error.message : response.statusText);
  return body;
}

// A refusal said plainly, once, above the cards (401: credentials; 403: no role; 429: login backoff).
function showAccess(message) {
  const notice = $("access-message");
  notice.textContent = message || "";
  notice.hidden = !message;
}

function accessText(err) {
  if (err.status === 401) return "Sign in: enter the API token above, or the user and password of the gateway's password file.";
  if (err.status === 403) return `Access refused (403): ${err.message}.`;
  if (err.status === 429) return `Too many failed logins: ${err.message}.`;
  return "";
}

async function refreshRole() {
  let me;
  try {
    me = await api("/api/v1/whoami");
  } catch (err) {
    $("publish-card").hidden = true;
    text($("whoami"), "");
    if ([401, 403, 429].includes(err.status)) {
      $("status").textContent = "refused";
      $("status").className = "status";
    }
    showAccess(accessText(err) || `The admin API answered: ${err.message}`);
    return;
  }
  showAccess("");
  document.body.dataset.role = me.role;
  $("publish-card").hidden = me.role !== "admin";
  text($("whoami"), (me.user ? `${me.user} · ` : "") + (me.role === "admin" ? "admin" : "monitor (read only)"));
}

function text(element, value) {
  if (element.textContent !== String(value)) element.textContent = value;
}

function renderConnections(stats) {
  const list = $("connections");
  for (const [protocol, count] of Object.entries(stats.connections)) {
    let item = list.querySelector(`li[data-protocol="${protocol}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.protocol = protocol;
      item.innerHTML = `<span class="count"></span><span class="name"></span>`;
      item.querySelector(".name").textContent = protocol;
      list.appendChild(item);
    }
    text(item.querySelector(".count"), count);
  }
  const sum = (values) => Object.values(values).reduce((a, b) => a + b, 0);
  text($("messages-in"), sum(stats.messages_received));
  text($("messages-out"), sum(stats.messages_sent));
  text($("retained"), stats.retained);
  text($("subscriptions"), stats.subscriptions);
  text($("uptime"), `up ${Math.round(stats.uptime)} s · v${stats.version}`);
}

function renderRates(stats) {
  for (const pair of Object.keys(stats.deliveries)) {
    if (!history.has(pair)) {
      history.set(pair, []);
      colors.set(pair, COLORS[colors.size % COLORS.length]);
    }
  }
  for (const [pair, samples] of history) {
    samples.push(stats.rates[pair] || 0);
    if (samples.length > HISTORY) samples.shift();
  }
  const legend = $("legend");
  for (const [pair, samples] of history) {
    let item = legend.querySelector(`li[data-pair="${pair}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.pair = pair;
      item.innerHTML = `<span class="swatch"></span><span class="label"></span> <span class="rate"></span>`;
      item.querySelector(".swatch").style.background = colors.get(pair);
      item.querySelector(".label").textContent = pair;
      legend.appendChild(item);
    }
    text(item.querySelector(".rate"), `${samples[samples.length - 1].toFixed(1)}/s · ${stats.deliveries[pair]} total`);
  }
  drawChart();
}

function drawChart() {
  const canvas = $("rates");
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, pad = 28;
  ctx.clearRect(0, 0, width, height);
  let max = 1;
  for (const samples of history.values()) for (const v of samples) max = Math.max(max, v);
  ctx.strokeStyle = "#d0d6dc";
  ctx.fillStyle = "#667";
  ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + (height - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(width, y); ctx.stroke();
    ctx.fillText((max * (4 - i) / 4).toFixed(max < 10 ? 1 : 0), 2, y + 4);
  }
  for (const [pair, samples] of history) {
    ctx.strokeStyle = colors.get(pair);
    ctx.lineWidth = 2;
    ctx.beginPath();
    samples.forEach((v, i) => {
      const x = pad + (width - pad) * (i + HISTORY - samples.length) / (HISTORY - 1);
      const y = pad / 2 + (height - pad) * (1 - v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function renderTopTopics(stats) {
  const body = $("top-topics").querySelector("tbody");
  body.replaceChildren(...stats.top_topics.map(({ topic, messages }) => {
    const row = document.createElement("tr");
    row.dataset.topic = topic;
    row.innerHTML = `<td class="topic"></td><td class="messages"></td>`;
    row.querySelector(".topic").textContent = topic;
    row.querySelector(".messages").textContent = messages;
    return row;
  }));
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
    const list = document.createElement("ul");
    for (const level of Object.keys(node).filter((k) => k !== "\u0000").sort()) {
      const child = node[level];
      const path = prefix ? `${prefix}/${level}` : level;
      const item = document.createElement("li");
      item.dataset.path = path;
      const name = document.createElement("span");
      name.textContent = level;
      item.appendChild(name);
      const entry = child["\u0000"];
      if (entry) {
        item.dataset.topic = entry.topic;
        name.className = "leaf";
        const value = document.createElement("span");
        value.className = "value";
        value.textContent = entry.payload_encoding === "text" ? entry.payload : `(base64) ${entry.payload}`;
        item.appendChild(value);
        name.addEventListener("click", () => showTopic(entry));
        if (entry.topic === selectedTopic) showTopic(entry);
      }
      if (Object.keys(child).some((k) => k !== "\u0000")) item.appendChild(build(child, path));
      list.appendChild(item);
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

$("publish-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    topic: $("publish-topic").value,
    payload: $("publish-payload").value,
    qos: Number($("publish-qos").value),
    retain: $("publish-retain").checked,
  };
  try {
    const answer = await api("/api/v1/publish", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("publish-result").textContent = `published to ${answer.topic}: ${answer.deliveries} deliveries`;
    refreshTree();
  } catch (err) {
    $("publish-result").textContent = `error: ${err.message}`;
    if (err.status === 403) showAccess(accessText(err));
  }
});

let source = null;
function connect() {
  if (source) source.close();
  const token = tokenInput.value;
  source = new EventSource("/api/v1/events" + (token ? "?access_token=" + encodeURIComponent(token) : ""));
  source.addEventListener("stats", (event) => {
    const stats = JSON.parse(event.data);
    $("status").textContent = "live";
    $("status").className = "status live";
    renderConnections(stats);
    renderRates(stats);
    renderTopTopics(stats);
  });
  source.onerror = () => {
    $("status").textContent = "disconnected (retrying)";
    $("status").className = "status";
    refreshRole();  // a refused stream says nothing itself: whoami tells why
  };
}

function duration(seconds) {
  const s = Math.floor(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

async function refreshCluster() {
  let cluster;
  try {
    cluster = await api("/api/v1/cluster");
  } catch (err) {
    return;  // an older gateway, or no rights: the card stays as it is
  }
  if (!cluster.node) return;  // single-node mode: no card
  $("cluster-card").hidden = false;
  text($("cluster-node"), cluster.node);
  text($("cluster-nats"), cluster.nats.connected ? `connected to ${cluster.nats.server}` : "disconnected");
  const body = document.querySelector("#cluster-nodes tbody");
  body.replaceChildren(...cluster.nodes.map((node) => {
    const row = document.createElement("tr");
    row.dataset.node = node.name;
    const cells = [node.name + (node.self ? " (this one)" : ""), duration(node.uptime || 0), node.connections ?? "",
                   node.published ?? "", node.self ? "now" : `${Number(node.last_heartbeat_s).toFixed(1)} s ago`];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  }));
}

async function refreshBridges() {
  let answer;
  try {
    answer = await api("/api/v1/bridges");
  } catch (err) {
    return;  // an older gateway, or no rights: the card stays as it is
  }
  if (!answer.bridges.length) return;  // no bridge configured: no card
  $("bridges-card").hidden = false;
  const body = document.querySelector("#bridges tbody");
  body.replaceChildren(...answer.bridges.map((bridge) => {
    const row = document.createElement("tr");
    row.dataset.bridge = bridge.name;
    row.dataset.connected = String(bridge.connected);
    const dropped = Object.values(bridge.dropped).reduce((a, b) => a + b, 0);
    const cells = [`${bridge.name} (${bridge.kind})`, bridge.url, bridge.connected ? "connected" : "down",
                   bridge.queued, bridge.forwarded, bridge.received, dropped, bridge.last_error || ""];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  }));
}

refreshRole();
connect();
refreshTree();
refreshCluster();
refreshBridges();
setInterval(refreshTree, 2000);
setInterval(refreshCluster, 2000);
setInterval(refreshBridges, 2000);
