"""Bridges to upstreams the gateway does not replace: an MQTT broker, an existing RabbitMQ, webhooks.

- settings.py: what each ``[[bridge.*]]`` table becomes (read by gateway/config_bridges.py);
- queue.py: the store-and-forward queue every bridge owns (no I/O);
- marks.py: loop prevention (the via marker, MQTT 3.1.1 echo suppression) and the webhook's JSON (no I/O);
- base.py: what every bridge does: subscribe to ``out``, publish what comes in through the door,
  reconnect with backoff and jitter, report its state;
- mqtt.py (paho-mqtt), amqp.py (aio-pika), webhook.py (aiohttp's client): one per kind;
- manager.py: the bridges of one gateway, started after the core and stopped before it.

Nothing here is imported by the config beyond settings.py, so reading a config loads no client library.
"""
