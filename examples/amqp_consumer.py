"""A RabbitMQ-style backend consumer reading MQTT sensor data from the gateway's amq.topic.

Nothing here is RosettaMQ-specific: the same code runs against RabbitMQ. MQTT
topics appear as routing keys (``sensors/hall/temperature`` ->
``sensors.hall.temperature``), MQTT 5 properties as AMQP properties:

    python examples/sensor_simulator.py --port 1883 &
    python examples/amqp_consumer.py --port 5672 --binding 'sensors.#'

When the connection is closed (kicked by an operator, the gateway restarting)
or cannot be made, it says so in one line and connects again, 1 s, then up to
30 s later; its queue is exclusive, so messages published meanwhile are not
kept for it. Ctrl-C stops it.

Needs pika (``pip install pika``; ``bash scripts/start.sh`` installs it).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import pika
import pika.exceptions

MAX_DELAY = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    parser.add_argument("--binding", default="sensors.#", help="binding key on amq.topic (* one level, # any)")
    return parser.parse_args(argv)


def on_message(ch, method, properties, body):  # type: ignore[no-untyped-def]
    extra = f" headers={properties.headers}" if properties.headers else ""
    print(f"{method.routing_key}: {body.decode('utf-8', 'replace')}{extra}", flush=True)
    ch.basic_ack(delivery_tag=method.delivery_tag)


def consume(args: argparse.Namespace, first: bool, ready: Callable[[], None]) -> bool:
    """One connection's life: bind a fresh exclusive queue to amq.topic and print what arrives.
    Raises when the connection could not be made or ends; returns only when consuming stops on purpose."""
    credentials = pika.PlainCredentials(args.user, args.password)
    parameters = pika.ConnectionParameters(args.host, args.port, credentials=credentials, connection_attempts=1)
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(queue=queue, exchange="amq.topic", routing_key=args.binding)
        channel.basic_qos(prefetch_count=100)
        channel.basic_consume(queue=queue, on_message_callback=on_message)
        print(f"{'consuming' if first else 'consuming again'} amq.topic '{args.binding}' from "
              f"{args.host}:{args.port}; Ctrl-C stops", flush=True)
        ready()
        channel.start_consuming()
        return True
    finally:
        if connection.is_open:
            connection.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    delay, first = 1.0, True

    def ready() -> None:
        nonlocal delay
        delay = 1.0  # it worked: after a loss, try again soon

    while True:
        try:
            consume(args, first, ready)
            return 0  # start_consuming ended without an error: the channel was closed on purpose
        except KeyboardInterrupt:
            return 0
        except pika.exceptions.AMQPChannelError as exc:  # refused by the gateway (an ACL, a binding): no retry helps
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        except pika.exceptions.AMQPConnectionError as exc:
            reason = f"closed by the gateway ({exc.reply_code} {exc.reply_text})" if isinstance(
                exc, pika.exceptions.ConnectionClosedByBroker) else f"no connection ({exc!r})"
            print(f"{reason}; connecting again in {delay:.0f} s", file=sys.stderr, flush=True)
        first = False
        try:
            time.sleep(delay)
        except KeyboardInterrupt:
            return 0
        delay = min(delay * 2, MAX_DELAY)


if __name__ == "__main__":
    sys.exit(main())
