"""The door: validation once, the principal's ACL, routing, and a result each adapter maps."""

from __future__ import annotations

from types import MappingProxyType

from core.acl import Authorizer, parse_acl
from core.door import Door, PublishStatus
from core.message import Message
from core.principal import SYSTEM, Principal
from core.router import Router
from core.subscriptions import SubscriptionOptions


class Collector:
    protocol = "test"
    is_online = True

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery, cache) -> None:  # type: ignore[no-untyped-def]
        self.messages.append(delivery.message)


def door_with_subscriber(topic_filter: str = "#") -> tuple[Door, Collector]:
    door = Door(Router(), max_message_bytes=1000)
    collector = Collector()
    door.router.subscribe(collector, topic_filter, SubscriptionOptions(qos=1))
    return door, collector


def bob() -> Principal:
    authorizer = Authorizer(rules=parse_acl("user bob\ntopic readwrite public/#\n", "acl"))
    return Principal.login(authorizer, "mqtt", "bob-1", "bob")


def test_a_valid_message_is_routed_and_the_result_counts_deliveries() -> None:
    door, collector = door_with_subscriber()
    result = door.publish(SYSTEM, Message("a/b", b"x", 1))
    assert result.status is PublishStatus.ROUTED and result.deliveries == 1 and result.accepted
    assert door.publish(SYSTEM, Message("$private/x", b"x")).status is PublishStatus.NO_SUBSCRIBERS  # '#' skips $


def test_the_acl_of_the_principal_is_checked_before_routing_and_retaining() -> None:
    door, collector = door_with_subscriber()
    denied = door.publish(bob(), Message("secret/x", b"1", 1, retain=True))
    assert denied.status is PublishStatus.DENIED and not denied.accepted
    assert collector.messages == [] and door.router.retained.get("secret/x") is None
    assert door.publish(bob(), Message("public/x", b"2")).status is PublishStatus.ROUTED
    assert door.denied == 1


def test_the_gateway_itself_skips_the_acl() -> None:
    door, _ = door_with_subscriber()
    assert door.publish(SYSTEM, Message("$SYS/broker/uptime", b"1")).accepted


def test_invalid_messages_are_refused_with_a_reason_and_never_routed() -> None:
    door, collector = door_with_subscriber()
    cases = [
        Message("a/+", b"x"), Message("", b"x"), Message("a\x00b", b"x"), Message("a/\ud800", b"x"),
        Message("a", b"x" * 1001), Message("a", b"x", 3),  # type: ignore[arg-type]
        Message("a", b"x", user_properties=(("k", "\ud800"),)), Message("a", b"x", user_properties=(("k",),)),  # type: ignore[arg-type]
        Message("a", b"x", 1, extra=MappingProxyType({"k": object()})),
    ]
    for message in cases:
        result = door.publish(SYSTEM, message)
        assert result.status is PublishStatus.INVALID and result.reason, message
    assert collector.messages == [] and door.invalid == len(cases)


def test_fields_of_the_wrong_type_are_refused_with_a_reason_not_a_type_error() -> None:
    """A caller may put anything in a Message (it is a tuple); the compiled hot path would raise on
    a wrong type, so the door names it instead (the fuzzer sent the admin API a QoS of 2.0)."""
    door, collector = door_with_subscriber()
    cases = [
        Message(b"a", b"x"), Message("a", "text"), Message("a", b"x", 2.0), Message("a", b"x", True),  # type: ignore[arg-type]
        Message("a", b"x", retain=1), Message("a", b"x", payload_format_utf8=None),  # type: ignore[arg-type]
        Message("a", b"x", expiry="soon"), Message("a", b"x", correlation_data="id"),  # type: ignore[arg-type]
        Message("a", b"x", user_properties=[("k", "v")]), Message("a", b"x", user_properties=(("k", 1),)),  # type: ignore[arg-type]
        Message("a", b"x", content_type=7), Message("a", b"x", 1, extra=[("k", 1)]),  # type: ignore[arg-type]
    ]
    for message in cases:
        result = door.publish(SYSTEM, message)
        assert result.status is PublishStatus.INVALID and result.reason, message
    assert collector.messages == [] and door.invalid == len(cases)


def test_properties_other_protocols_cannot_carry_are_not_the_doors_business() -> None:
    door, collector = door_with_subscriber()
    message = Message("a", b"x", user_properties=(("nul", "a\x00b"), ("long", "y" * 70_000)))
    assert door.publish(SYSTEM, message).accepted
    assert collector.messages == [message]


def test_clear_retained_removes_without_delivering_and_checks_the_acl() -> None:
    door, collector = door_with_subscriber()
    door.publish(SYSTEM, Message("public/r", b"v", retain=True))
    collector.messages.clear()
    assert door.clear_retained(bob(), "public/r", Message("public/r", b"", retain=True)).accepted
    assert door.router.retained.get("public/r") is None and collector.messages == []
    door.publish(SYSTEM, Message("secret/r", b"v", retain=True))
    assert door.clear_retained(bob(), "secret/r", Message("secret/r", b"", retain=True)).status is PublishStatus.DENIED
    assert door.router.retained.get("secret/r") is not None


def test_a_subscriber_that_raises_loses_only_its_own_delivery() -> None:
    door, collector = door_with_subscriber()

    class Broken(Collector):
        def deliver(self, delivery, cache) -> None:  # type: ignore[no-untyped-def]
            raise ValueError("cannot encode")

    door.router.subscribe(Broken(), "a/#", SubscriptionOptions(qos=1))
    result = door.publish(SYSTEM, Message("a/b", b"x"))
    assert result.accepted and result.deliveries == 1 and collector.messages
    assert door.router.delivery_errors == 1
