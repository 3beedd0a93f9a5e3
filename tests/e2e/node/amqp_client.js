// amqplib against RosettaMQ: each scenario prints one JSON line of what it observed.
// usage: node amqp_client.js PORT SCENARIO [ARG]
'use strict';
const amqp = require('amqplib');

const [port, scenario] = process.argv.slice(2);
const url = `amqp://guest:guest@127.0.0.1:${port}/`;
const uid = `${process.pid}-${Date.now()}`;

function nextMessage(ch, queue, opts = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${queue}`)), 10000);
    ch.consume(queue, (msg) => {
      clearTimeout(timer);
      ch.cancel(msg.fields.consumerTag).then(() => resolve(msg), reject);
    }, opts).catch(reject);
  });
}

const scenarios = {
  async basics(conn) {
    const ch = await conn.createChannel();
    const out = {};
    const ex = `node-x-${uid}`, q = `node-q-${uid}`;
    await ch.assertExchange(ex, 'direct', { durable: false });
    out.declareOk = await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, ex, 'k');
    ch.publish(ex, 'k', Buffer.from('hello'), { contentType: 'text/plain', headers: { h: 'v' } });
    const msg = await nextMessage(ch, q);
    out.consumed = { body: msg.content.toString(), contentType: msg.properties.contentType,
                     headers: msg.properties.headers, routingKey: msg.fields.routingKey };
    ch.nack(msg, false, true);
    const again = await nextMessage(ch, q);
    out.redelivered = again.fields.redelivered;
    ch.ack(again);
    ch.sendToQueue(q, Buffer.from('got'));
    const got = await ch.get(q, { noAck: false });
    out.get = got && got.content.toString();
    ch.ack(got);
    out.getEmpty = await ch.get(q);
    await ch.prefetch(2);
    for (let i = 0; i < 4; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    const held = [];
    await new Promise((resolve) => ch.consume(q, (m) => { held.push(m); if (held.length === 2) resolve(); }));
    out.readyWhilePrefetched = (await ch.checkQueue(q)).messageCount;
    out.prefetched = held.map((m) => m.content.toString());
    await ch.close();
    return out;
  },

  async confirms(conn) {
    const ch = await conn.createConfirmChannel();
    const out = {};
    const q = `node-confirm-${uid}`;
    await ch.assertQueue(q, { exclusive: true });
    out.ack = await new Promise((resolve) => ch.sendToQueue(q, Buffer.from('x'), {}, (err) => resolve(err === null)));
    const returned = new Promise((resolve) => ch.on('return', (m) => resolve(m)));
    ch.publish('amq.direct', `nowhere-${uid}`, Buffer.from('lost'), { mandatory: true });
    const ret = await returned;
    out.returned = { code: ret.fields.replyCode, text: ret.fields.replyText, body: ret.content.toString() };
    await ch.waitForConfirms();
    await ch.close();
    return out;
  },

  async deadletters(conn) {
    const ch = await conn.createChannel();
    const dead = `node-dead-${uid}`, ttl = `node-ttl-${uid}`, bounded = `node-max-${uid}`;
    await ch.assertQueue(dead, { exclusive: true });
    await ch.assertQueue(ttl, { exclusive: true, messageTtl: 50, deadLetterExchange: '', deadLetterRoutingKey: dead });
    await ch.assertQueue(bounded, { exclusive: true, maxLength: 1, deadLetterExchange: '', deadLetterRoutingKey: dead });
    ch.sendToQueue(ttl, Buffer.from('expired'));
    const first = await nextMessage(ch, dead, { noAck: true });
    ch.sendToQueue(bounded, Buffer.from('a'));
    ch.sendToQueue(bounded, Buffer.from('b'));
    const second = await nextMessage(ch, dead, { noAck: true });
    const kept = await ch.get(bounded, { noAck: true });
    await ch.close();
    return {
      deaths: [first, second].map((m) => [m.content.toString(), m.properties.headers['x-death'][0].reason]),
      kept: kept.content.toString(),
    };
  },

  async mqtt(conn) {
    // Bound to amq.topic, print READY, then report what MQTT published; finally publish for MQTT.
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, 'amq.topic', 'node.*.in');
    console.log(JSON.stringify({ ready: true }));
    const msg = await nextMessage(ch, queue, { noAck: true });
    ch.publish('amq.topic', 'node.from.amqplib', Buffer.from('hi mqtt'),
               { contentType: 'text/plain', correlationId: 'n-1', headers: { via: 'amqplib' } });
    await ch.close();
    return { routingKey: msg.fields.routingKey, body: msg.content.toString(),
             contentType: msg.properties.contentType, headers: msg.properties.headers,
             deliveryMode: msg.properties.deliveryMode };
  },

  async closeBuffered(conn) {
    // The publisher of issue 22: it closes with publishes still in amqplib's buffers (amqplib writes
    // connection.close ahead of them). Its close must complete, and what the server read be routed.
    const queue = process.argv[4];
    const errors = [];
    conn.on('error', (err) => errors.push(String(err)));
    const closeEvent = new Promise((resolve) => conn.on('close', (err) => resolve(err ? String(err) : 'clean')));
    const ch = await conn.createChannel();
    for (let i = 0; i < 1000; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
    await ch.checkQueue(queue); // behind the first thousand on the same channel: the server has read them
    for (let i = 1000; i < 2000; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
    conn.closedByScenario = true;
    const closed = await Promise.race([
      conn.close().then(() => 'closed', (err) => `close failed: ${err}`), within(10000, 'close timed out')]);
    return { closed, closeEvent: await Promise.race([closeEvent, within(10000, 'no close event')]), errors };
  },

  async directReplyTo(conn) {
    // RPC the way amqplib's tutorials do it with RabbitMQ: replies through amq.rabbitmq.reply-to.
    const server = await amqp.connect(url);
    try {
      const sch = await server.createChannel();
      const { queue } = await sch.assertQueue('', { exclusive: true });
      await sch.consume(queue, (msg) => {
        sch.sendToQueue(msg.properties.replyTo, Buffer.from(msg.content.toString().toUpperCase()),
                        { correlationId: msg.properties.correlationId });
      }, { noAck: true });
      const ch = await conn.createChannel();
      const answers = new Map();
      const done = new Promise((resolve) => {
        ch.consume('amq.rabbitmq.reply-to', (msg) => {
          answers.set(msg.properties.correlationId, msg.content.toString());
          if (answers.size === 3) resolve();
        }, { noAck: true });
      });
      for (const word of ['a', 'b', 'c']) {
        ch.sendToQueue(queue, Buffer.from(word), { replyTo: 'amq.rabbitmq.reply-to', correlationId: word });
      }
      const outcome = await Promise.race([done.then(() => 'answered'), within(10000, 'no answers')]);
      return { outcome, answers: Object.fromEntries(answers) };
    } finally {
      await server.close();
    }
  },

  // RabbitMQ extensions of issue 18: exchange-to-exchange bindings, priority queues, reject-publish nacks.
  async extensions(conn) {
    const out = {};
    const ch = await conn.createConfirmChannel();
    const src = `node-src-${uid}`, dst = `node-dst-${uid}`;
    await ch.assertExchange(src, 'topic', { autoDelete: true });
    await ch.assertExchange(dst, 'fanout', { autoDelete: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, dst, '');
    await ch.bindExchange(dst, src, 'metrics.#');
    ch.publish(src, 'metrics.cpu', Buffer.from('via two exchanges'));
    out.e2e = (await nextMessage(ch, queue, { noAck: true })).content.toString();
    await ch.unbindExchange(dst, src, 'metrics.#');
    const prio = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-max-priority': 5 } })).queue;
    for (const [body, priority] of [['low', 1], ['high', 5], ['none', undefined], ['mid', 3]]) {
      await new Promise((resolve) => ch.sendToQueue(prio, Buffer.from(body), { priority }, resolve));
    }
    out.priorities = [];
    for (let i = 0; i < 4; i++) out.priorities.push((await ch.get(prio, { noAck: true })).content.toString());
    const full = (await ch.assertQueue('', { exclusive: true,
      arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } })).queue;
    const sent = ['kept', 'refused'].map((body) => new Promise((resolve) =>
      ch.sendToQueue(full, Buffer.from(body), {}, (err) => resolve(err ? 'nack' : 'ack'))));
    out.confirms = await Promise.all(sent);
    await ch.close();
    return out;
  },
};

function within(ms, what) {
  return new Promise((resolve) => setTimeout(() => resolve(what), ms).unref());
}

(async () => {
  const conn = await amqp.connect(url);
  try {
    console.log(JSON.stringify(await scenarios[scenario](conn)));
  } finally {
    if (!conn.closedByScenario) await conn.close();
  }
})().catch((err) => {
  console.error(err && err.stack || String(err));
  process.exit(1);
});
