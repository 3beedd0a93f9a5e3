"""AMQP 0-9-1 reply codes and the one table that says which errors close what.

Handlers raise `AMQPError(code, text)`; the connection looks the code up here:
a channel error (403, 404, 405, 406) closes the channel, every other error
closes the connection, as the 0-9-1 specification assigns them. A bug of ours
(any other exception) becomes 541 INTERNAL_ERROR on the connection.
"""

from __future__ import annotations

import enum


class ReplyCode(enum.IntEnum):
    SUCCESS = 200
    CONTENT_TOO_LARGE = 311  # channel-level in the spec; RabbitMQ never sends it
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541


# Soft errors: the spec's channel exceptions. Everything else is a hard (connection) error.
CHANNEL_ERRORS = frozenset(
    {ReplyCode.ACCESS_REFUSED, ReplyCode.NOT_FOUND, ReplyCode.RESOURCE_LOCKED, ReplyCode.PRECONDITION_FAILED,
     ReplyCode.CONTENT_TOO_LARGE}
)


class AMQPError(Exception):
    """A remote error: the peer did something the spec forbids. `code` decides channel vs connection."""

    def __init__(self, code: ReplyCode, text: str) -> None:
        super().__init__(text)
        self.code = ReplyCode(code)
        self.text = text

    @property
    def closes_connection(self) -> bool:
        return self.code not in CHANNEL_ERRORS

    def reply_text(self) -> str:
        """RabbitMQ's form, `NOT_FOUND - no queue 'q'`, cut to fit a shortstr (255 octets of UTF-8)."""
        return f"{self.code.name} - {self.text}".encode()[:255].decode("utf-8", "ignore")


def access_refused(text: str) -> AMQPError:
    return AMQPError(ReplyCode.ACCESS_REFUSED, text)


def not_found(text: str) -> AMQPError:
    return AMQPError(ReplyCode.NOT_FOUND, text)


def resource_locked(text: str) -> AMQPError:
    return AMQPError(ReplyCode.RESOURCE_LOCKED, text)


def precondition_failed(text: str) -> AMQPError:
    return AMQPError(ReplyCode.PRECONDITION_FAILED, text)


def frame_error(text: str) -> AMQPError:
    return AMQPError(ReplyCode.FRAME_ERROR, text)


def syntax_error(text: str) -> AMQPError:
    return AMQPError(ReplyCode.SYNTAX_ERROR, text)


def command_invalid(text: str) -> AMQPError:
    return AMQPError(ReplyCode.COMMAND_INVALID, text)


def channel_error(text: str) -> AMQPError:
    return AMQPError(ReplyCode.CHANNEL_ERROR, text)


def unexpected_frame(text: str) -> AMQPError:
    return AMQPError(ReplyCode.UNEXPECTED_FRAME, text)


def not_allowed(text: str) -> AMQPError:
    return AMQPError(ReplyCode.NOT_ALLOWED, text)


def not_implemented(text: str) -> AMQPError:
    return AMQPError(ReplyCode.NOT_IMPLEMENTED, text)


def publish_refused(status: int, topic: str, vhost: str, why: str) -> AMQPError:
    """The channel error for a publish to amq.topic the core's door refused (core.door.PublishStatus:
    2 denied by the topic ACL: 403, as RabbitMQ's MQTT topic permissions; 3 invalid: 406)."""
    if status == 2:
        return access_refused(f"access to topic '{topic}' in exchange 'amq.topic' in vhost '{vhost}' refused")
    return precondition_failed(f"message refused: {why}")


def resource_refused(permission: str, kind: str, name: str, vhost: str, username: str | None) -> AMQPError:
    """RabbitMQ's refusal of a queue or exchange operation (adapters/amqp/permissions.py):
    `read access to queue 'q' in vhost '/' refused for user 'bob'`."""
    return access_refused(f"{permission} access to {kind} '{name}' in vhost '{vhost}' refused for {_user(username)}")


def topic_refused(permission: str, topic: str, vhost: str, username: str | None) -> AMQPError:
    """A topic the ACL file does not grant (a dead-letter routing key into amq.topic, checked at declare)."""
    return access_refused(f"{permission} access to topic '{topic}' in exchange 'amq.topic' in vhost '{vhost}' "
                          f"refused for {_user(username)}")


def _user(username: str | None) -> str:
    return "an anonymous user" if username is None else f"user '{username}'"
