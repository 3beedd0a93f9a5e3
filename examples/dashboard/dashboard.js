// RosettaMQ dashboard: MQTT over WebSocket with MQTT.js (vendor/mqtt.min.js, global `mqtt`).
//
// Where the broker is, first match wins:
//   1. ?ws=ws://host:port/path            (a full URL)
//   2. ?port=8083&path=/mqtt              (on the page's host)
//   3. config.json next to this page      (served by the gateway: its real WS/WSS ports)
//   4. ws://<page host>:8083/mqtt         (the gateway's default)
// Other options: ?filter=sensors/%23 (subscription), ?topic=a/b (chart topic).
"use strict";

(function () {
  const MAX_POINTS = 300;
  const DEFAULT_PORT = 8083;
  const DEFAULT_PATH = "/mqtt";
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);

  const topics = new Map(); // topic -> {row, value, numeric, qos, retain, updated, count, series}
  let client = null;
  let currentFilter = null;
  let chartTopic = params.get("topic") || "";
  let total = 0;
  let drawPending = false;

  // -- broker address -----------------------------------------------------------

  async function brokerUrl() {
    if (params.get("ws")) return params.get("ws");
    const host = location.hostname || "127.0.0.1";
    const hostPart = host.includes(":") ? `[${host}]` : host;
    if (params.get("port")) {
      return `ws://${hostPart}:${params.get("port")}${params.get("path") || DEFAULT_PATH}`;
    }
    try {
      const response = await fetch("config.json", { cache: "no-store" });
      if (response.ok) {
        const config = await response.json();
        const secure = location.protocol === "https:" && config.wss;
        const listener = secure ? config.wss : config.ws || config.wss;
        if (listener) {
          const scheme = listener === config.wss ? "wss" : "ws";
          return `${scheme}://${hostPart}:${listener.port}${listener.path}`;
        }
      }
    } catch (err) {
      // Opened as a file or from another server: fall through to the default.
    }
    return `ws://${hostPart}:${DEFAULT_PORT}${DEFAULT_PATH}`;
  }

  // -- connection -------------------------------------------------------------------

  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text || state;
    $("publish").disabled = state !== "connected";
    $("connect").textContent = client ? "Disconnect" : "Connect";
  }

  // CONNACK codes that retrying cannot fix (3.1.1: 4, 5; MQTT 5: 0x86, 0x87, 0x8A).
  const REFUSED_LOGIN = new Set([4, 5, 134, 135, 138]);

  function connect(url) {
    disconnect();
    const username = $("username").value;
    client = mqtt.connect(url, {
      username: username || undefined,
      password: username ? $("password").value : undefined,
      protocolVersion: 5,
      clientId: "dashboard-" + Math.random().toString(16).slice(2, 10),
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
    });
    setStatus("connecting", `connecting to ${url}`);
    client.on("connect", () => {
      setStatus("connected");
      currentFilter = null;
      subscribe($("filter").value.trim());
    });
    client.on("reconnect", () => setStatus("reconnecting"));
    client.on("offline", () => setStatus("offline"));
    client.on("error", (err) => {
      if (REFUSED_LOGIN.has(err.code)) {
        // Wrong or missing credentials: stop retrying until the user connects again.
        client.end(true);
        client = null;
        setStatus("error", "login refused: enter a user name and password, then Connect");
      } else {
        setStatus("error", `error: ${err.message}`);
      }
    });
    client.on("message", onMessage);
  }

  function disconnect() {
    if (client) {
      client.end(true);
      client = null;
    }
    currentFilter = null;
    delete $("filter").dataset.subscribed;
    setStatus("disconnected");
  }

  function subscribe(filter) {
    if (!client || !client.connected || !filter) return;
    if (currentFilter && currentFilter !== filter) client.unsubscribe(currentFilter);
    delete $("filter").dataset.subscribed;
    client.subscribe(filter, { qos: 1 }, (err, granted) => {
      const refused = granted && granted.some((g) => g.qos >= 128);
      if (err || refused) {
        setStatus("error", `subscribe to ${filter} refused${err ? ": " + err.message : ""}`);
        return;
      }
      currentFilter = filter;
      $("filter").dataset.subscribed = filter; // tests and styles can tell the SUBACK came back
    });
  }

  // -- messages ---------------------------------------------------------------------

  const decoder = new TextDecoder("utf-8", { fatal: true });

  function decode(payload) {
    try {
      return decoder.decode(payload);
    } catch (err) {
      return "0x" + Array.from(payload, (b) => b.toString(16).padStart(2, "0")).join("");
    }
  }

  function numericValue(text) {
    const trimmed = text.trim();
    if (trimmed === "") return null;
    const number = Number(trimmed);
    if (Number.isFinite(number)) return number;
    try {
      const parsed = JSON.parse(trimmed);
      if (parsed && Number.isFinite(parsed.value)) return parsed.value;
    } catch (err) {
      // not JSON
    }
    return null;
  }

  function onMessage(topic, payload, packet) {
    const text = decode(payload);
    const numeric = numericValue(text);
    const now = Date.now();
    let entry = topics.get(topic);
    if (!entry) {
      entry = { row: addRow(topic), count: 0, series: [] };
      topics.set(topic, entry);
    }
    Object.assign(entry, { value: text, numeric, qos: packet.qos, retain: packet.retain, updated: now });
    entry.count += 1;
    total += 1;
    if (numeric !== null) {
      entry.series.push({ t: now, v: numeric });
      if (entry.series.length > MAX_POINTS) entry.series.shift();
      if (!chartTopic) selectChartTopic(topic);
      addChartOption(topic);
    }
    renderRow(entry);
    $("message-count").textContent = `${total} message${total === 1 ? "" : "s"}`;
    if (topic === chartTopic) scheduleDraw();
  }

  // -- table ------------------------------------------------------------------------

  function addRow(topic) {
    const row = document.createElement("tr");
    row.dataset.topic = topic;
    for (const name of ["topic", "value", "qos", "updated", "count"]) {
      const cell = document.createElement("td");
      cell.className = name;
      row.appendChild(cell);
    }
    row.cells[0].textContent = topic;
    row.addEventListener("click", () => {
      if (topics.get(topic).numeric !== null) selectChartTopic(topic);
    });
    const body = $("topics").tBodies[0];
    const after = Array.from(body.rows).find((r) => r.dataset.topic > topic);
    body.insertBefore(row, after || null);
    $("empty").hidden = true;
    return row;
  }

  function renderRow(entry) {
    const cells = entry.row.cells;
    cells[1].textContent = entry.value;
    cells[1].title = entry.value;
    cells[2].textContent = entry.qos + (entry.retain ? " R" : "");
    cells[3].textContent = new Date(entry.updated).toLocaleTimeString();
    cells[4].textContent = entry.count;
    entry.row.classList.remove("flash");
    void entry.row.offsetWidth; // restart the highlight animation
    entry.row.classList.add("flash");
  }

  function clearTable() {
    topics.clear();
    $("topics").tBodies[0].replaceChildren();
    $("chart-topic").replaceChildren(new Option("(numeric topic)", ""));
    chartTopic = "";
    total = 0;
    $("message-count").textContent = "0 messages";
    $("empty").hidden = false;
    scheduleDraw();
  }

  // -- chart ------------------------------------------------------------------------

  function addChartOption(topic) {
    const select = $("chart-topic");
    if (Array.from(select.options).some((o) => o.value === topic)) return;
    select.add(new Option(topic, topic));
    select.value = chartTopic;
  }

  function selectChartTopic(topic) {
    chartTopic = topic;
    addChartOption(topic);
    $("chart-topic").value = topic;
    for (const [name, entry] of topics) entry.row.classList.toggle("selected", name === topic);
    scheduleDraw();
  }

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      drawChart();
    });
  }

  function drawChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";

    const entry = topics.get(chartTopic);
    const points = entry ? entry.series : [];
    canvas.dataset.topic = chartTopic; // what is drawn, for tests and for anyone inspecting the page
    canvas.dataset.points = points.length;
    if (points.length === 0) {
      ctx.fillStyle = "#66727f";
      ctx.fillText("Waiting for numeric values…", 16, height / 2);
      return;
    }
    const pad = { left: 52, right: 16, top: 14, bottom: 26 };
    let min = Math.min(...points.map((p) => p.v));
    let max = Math.max(...points.map((p) => p.v));
    if (min === max) { min -= 1; max += 1; }
    const span = max - min;
    min -= span * 0.08;
    max += span * 0.08;
    // Samples are evenly spaced (bursts stay readable); the time axis labels the first and last.
    const t0 = points[0].t;
    const t1 = points[points.length - 1].t;
    const x = (i) => pad.left + (i / Math.max(1, points.length - 1)) * (width - pad.left - pad.right);
    const y = (v) => pad.top + (1 - (v - min) / (max - min)) * (height - pad.top - pad.bottom);

    // grid and labels
    ctx.strokeStyle = "#e6ebf0";
    ctx.fillStyle = "#66727f";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = min + ((max - min) * i) / 4;
      const gy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, gy);
      ctx.lineTo(width - pad.right, gy);
      ctx.stroke();
      ctx.fillText(formatNumber(v), 6, gy + 4);
    }
    ctx.fillText(new Date(t0).toLocaleTimeString(), pad.left, height - 8);
    const end = new Date(t1).toLocaleTimeString();
    if (points.length > 1) ctx.fillText(end, width - pad.right - ctx.measureText(end).width, height - 8);

    // the series
    ctx.strokeStyle = "#1769aa";
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p.v)) : ctx.moveTo(x(i), y(p.v))));
    ctx.stroke();
    const last = points[points.length - 1];
    ctx.fillStyle = "#1769aa";
    ctx.beginPath();
    ctx.arc(x(points.length - 1), y(last.v), 3.5, 0, 2 * Math.PI);
    ctx.fill();
    const label = `${chartTopic} = ${formatNumber(last.v)}`;
    ctx.fillText(label, Math.max(pad.left, width - pad.right - ctx.measureText(label).width), pad.top + 2);
  }

  function formatNumber(v) {
    return Math.abs(v) >= 1000 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(2);
  }

  // -- publishing -------------------------------------------------------------------

  function publish(event) {
    event.preventDefault();
    const status = $("publish-status");
    if (!client || !client.connected) return;
    const topic = $("pub-topic").value.trim();
    const options = { qos: Number($("pub-qos").value), retain: $("pub-retain").checked };
    status.dataset.state = "pending";
    status.textContent = "publishing…";
    client.publish(topic, $("pub-payload").value, options, (err) => {
      status.dataset.state = err ? "error" : "ok";
      status.textContent = err ? `failed: ${err.message}` : `published to ${topic} at ${new Date().toLocaleTimeString()}`;
    });
  }

  // -- wiring -----------------------------------------------------------------------

  async function start() {
    if (params.get("filter")) $("filter").value = params.get("filter");
    $("url").value = await brokerUrl();
    $("connect-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (client) disconnect();
      else connect($("url").value.trim());
    });
    $("subscribe-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const filter = $("filter").value.trim();
      if (filter === currentFilter) return;
      clearTable();
      subscribe(filter);
    });
    $("chart-topic").addEventListener("change", (event) => selectChartTopic(event.target.value));
    $("publish-form").addEventListener("submit", publish);
    window.addEventListener("resize", scheduleDraw);
    scheduleDraw();
    connect($("url").value);
  }

  start();
})();
