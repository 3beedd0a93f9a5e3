"""A RabbitMQ-style backend consumer reading MQTT sensor data from the gateway's amq.topic.

Nothing here is RosettaMQ-specific: the same code runs against RabbitMQ. MQTT
topics appear as routing keys (``sensors/hall/temperature`` ->
``sensors.hall.temperature``), MQTT 5 properties as AMQP properties:

    python examples/sensor_simulator.py --port 1883 &
    python examples/amqp_consumer.py --port 5672 --binding 'sensors.#'

Needs pika (``pip install pika``).
"""

from __future__ import annotations

import argparse

import pika


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    parser.add_argument("--binding", default="sensors.#", help="binding key on amq.topic (* one level, # any)")
    args = parser.parse_args()

    credentials = pika.PlainCredentials(args.user, args.password)
    connection = pika.BlockingConnection(pika.ConnectionParameters(args.host, args.port, credentials=credentials))
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange="amq.topic", routing_key=args.binding)

    def on_message(ch, method, properties, body):  # type: ignore[no-untyped-def]
        extra = f" headers={properties.headers}" if properties.headers else ""
        print(f"{method.routing_key}: {body.decode('utf-8', 'replace')}{extra}", flush=True)
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_qos(prefetch_count=100)
    channel.basic_consume(queue=queue, on_message_callback=on_message)
    print(f"consuming amq.topic '{args.binding}' from {args.host}:{args.port}; Ctrl-C stops", flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        connection.close()


if __name__ == "__main__":
    main()
