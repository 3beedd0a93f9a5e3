// AMQP (#/amqp): exchanges, queues (ready, unacked, consumers, publish and deliver rates), bindings;
// purge or delete a queue after a confirmation; publish to an exchange. RabbitMQ management API shapes.

import { api } from "./api.js";
import { actionButton, confirmDialog, h, outcome, table } from "./dom.js";

const REFRESH = 5000;
const previous = new Map(); // "vhost/name" -> {time, publish, deliver}

const path = (vhost, name) => `${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`;

function rates(queue, now) {
  const key = `${queue.vhost}/${queue.name}`;
  const last = previous.get(key);
  previous.set(key, { time: now, publish: queue.publish_total, deliver: queue.deliver_total });
  if (!last || queue.publish_total == null || now <= last.time) return ["", ""];
  const seconds = (now - last.time) / 1000;
  return [((queue.publish_total - last.publish) / seconds).toFixed(1), ((queue.deliver_total - last.deliver) / seconds).toFixed(1)];
}

export function render(view, ctx) {
  const result = h("p#amqp-result.muted", { role: "status" });
  const queues = h("div#amqp-queues");
  const exchanges = h("div#amqp-exchanges");
  const bindings = h("div#amqp-bindings");
  const exchangeSelect = h("select#amqp-publish-exchange", { "aria-label": "exchange" });
  const publishResult = h("p#amqp-publish-result.muted", { role: "status" });
  const form = h("form#amqp-publish-form", {},
    h("label", {}, "exchange ", exchangeSelect),
    h("label", {}, "routing key ", h("input#amqp-publish-key", { value: "" })),
    h("label", {}, "payload ", h("textarea#amqp-publish-payload", { rows: 3 }, "hello from the console")),
    h("label", {}, "content type ", h("input#amqp-publish-content-type", { value: "text/plain" })),
    h("label.inline", {}, h("input#amqp-publish-persistent", { type: "checkbox" }), " persistent"),
    actionButton(ctx, "Publish", () => {}, { id: "amqp-publish-button", type: "submit" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [vhost, name] = JSON.parse(exchangeSelect.value || '["/", ""]');
    const properties = { content_type: form.querySelector("#amqp-publish-content-type").value || undefined,
                         delivery_mode: form.querySelector("#amqp-publish-persistent").checked ? 2 : 1 };
    await outcome(publishResult, api(`/api/v1/amqp/exchanges/${path(vhost, name || "amq.default")}/publish`, { method: "POST", body: {
      routing_key: form.querySelector("#amqp-publish-key").value, payload: form.querySelector("#amqp-publish-payload").value,
      payload_encoding: "string", properties } }), (a) => (a.routed ? "routed" : "published, but no queue was bound for it (unroutable)"));
    load();
  });
  view.append(h("section.page#amqp-page", {}, h("h2", {}, "AMQP"), result,
    h("h3", {}, "Queues"), queues, h("h3", {}, "Exchanges"), exchanges, h("h3", {}, "Bindings"), bindings,
    h("section.card#amqp-publish", {}, h("h3", {}, "Publish to an exchange"), form, publishResult)));

  const purge = async (q) => {
    if (!(await confirmDialog(`Purge the ${q.messages_ready ?? q.messages} ready message(s) of queue ${q.name} (vhost ${q.vhost})?`, { action: "Purge" }))) return;
    if (await outcome(result, api(`/api/v1/amqp/queues/${path(q.vhost, q.name)}/contents`, { method: "DELETE" }),
                      (a) => `purged ${a.purged} message(s) from ${q.name}`)) load();
  };
  const remove = async (q) => {
    if (!(await confirmDialog(`Delete queue ${q.name} (vhost ${q.vhost}) and its messages?`, { action: "Delete queue" }))) return;
    if (await outcome(result, api(`/api/v1/amqp/queues/${path(q.vhost, q.name)}`, { method: "DELETE" }),
                      (a) => `deleted queue ${a.deleted}`)) load();
  };

  const load = async () => {
    let answers;
    try {
      answers = await Promise.all(["queues", "exchanges", "bindings"].map((kind) => api(`/api/v1/amqp/${kind}`)));
    } catch (err) {
      result.textContent = err.status === 404 ? "The AMQP listener is not enabled." : `error ${err.status || ""}: ${err.message}`;
      return;
    }
    const [q, x, b] = answers;
    const now = Date.now();
    queues.replaceChildren(table([
      { label: "vhost", value: (r) => r.vhost },
      { label: "queue", value: (r) => r.name },
      { label: "ready", value: (r) => r.messages_ready ?? r.messages, className: "num ready" },
      { label: "unacked", value: (r) => r.messages_unacked ?? r.unacked, className: "num" },
      { label: "consumers", value: (r) => r.consumers, className: "num" },
      { label: "in/s · out/s", value: (r) => rates(r, now).filter(String).join(" · "), className: "num" },
      { label: "flags", value: (r) => [r.durable && "durable", r.auto_delete && "auto-delete", r.exclusive && "exclusive"].filter(Boolean).join(", ") },
      { label: "", value: (r) => h("span.actions", {}, actionButton(ctx, "Purge", () => purge(r), { class: "small purge" }),
                                   actionButton(ctx, "Delete", () => remove(r), { class: "danger small delete" })) },
    ], q.queues, { id: "amqp-queues-table", empty: "no queue", rowAttrs: (r) => ({ dataset: { vhost: r.vhost, queue: r.name } }) }));
    exchanges.replaceChildren(table([
      { label: "vhost", value: (r) => r.vhost },
      { label: "exchange", value: (r) => r.name || "(AMQP default)" },
      { label: "type", value: (r) => r.type },
      { label: "flags", value: (r) => [r.durable && "durable", r.auto_delete && "auto-delete", r.internal && "internal"].filter(Boolean).join(", ") },
    ], x.exchanges, { id: "amqp-exchanges-table", rowAttrs: (r) => ({ dataset: { vhost: r.vhost, exchange: r.name } }) }));
    bindings.replaceChildren(table([
      { label: "vhost", value: (r) => r.vhost },
      { label: "source", value: (r) => r.source || "(AMQP default)" },
      { label: "destination", value: (r) => r.destination + (r.destination_type === "exchange" ? " (exchange)" : "") },
      { label: "routing key", value: (r) => r.routing_key },
    ], b.bindings, { id: "amqp-bindings-table", empty: "no binding" }));
    const chosen = exchangeSelect.value;
    exchangeSelect.replaceChildren(...x.exchanges.filter((e) => !e.internal).map((e) => {
      const value = JSON.stringify([e.vhost, e.name]);
      return h("option", { value, selected: value === chosen }, `${e.name || "(AMQP default)"} · ${e.vhost}`);
    }));
    if (!chosen) {
      const topic = [...exchangeSelect.options].find((o) => JSON.parse(o.value)[1] === "amq.topic");
      if (topic) exchangeSelect.value = topic.value;
    }
  };
  load();
  const timer = setInterval(load, REFRESH);
  return () => clearInterval(timer);
}
