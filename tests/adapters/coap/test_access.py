"""Who a request comes from: connection tokens, the authenticator, and the accepted-credentials cache."""

from __future__ import annotations

import pytest

from adapters.coap.access import AuthCache, authenticate, begin_login, finish_login
from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import Unauthorized
from adapters.coap.query import Query
from core.auth import Credentials


class CountingAuthenticator:
    def __init__(self) -> None:
        self.seen: list[Credentials] = []

    def authenticate(self, credentials: Credentials) -> bool:
        self.seen.append(credentials)
        return credentials.username == "alice" and credentials.password == b"pw"


def test_without_an_authenticator_anyone_gets_in_as_what_they_claim() -> None:
    identity = authenticate(Query(client_id="c", username="u"), "1.2.3.4:5", None, ConnectionRegistry(60), 0.0)
    assert (identity.client_id, identity.username, identity.origin.protocol) == ("c", "u", "coap")


def test_the_authenticator_gets_coap_credentials_and_a_refusal_is_unauthorized() -> None:
    checker = CountingAuthenticator()
    authenticate(Query(client_id="c", username="alice", password=b"pw"), "addr", checker, ConnectionRegistry(60), 0)
    assert checker.seen == [Credentials("coap", "c", "alice", b"pw", "addr")]
    with pytest.raises(Unauthorized):
        authenticate(Query(username="alice", password=b"no"), "addr", checker, ConnectionRegistry(60), 0)


def test_a_connection_token_stands_for_the_password() -> None:
    connections = ConnectionRegistry(60, new_token=lambda: "tok")
    connections.open("dev", "alice", now=0)
    checker = CountingAuthenticator()
    identity = authenticate(Query(client_id="dev", token="tok"), "addr", checker, connections, 1)
    assert (identity.client_id, identity.username, checker.seen) == ("dev", "alice", [])
    with pytest.raises(Unauthorized):
        authenticate(Query(client_id="dev", token="tok", username="alice", password=b"pw"), "addr", checker,
                     connections, 61)  # expired: the password beside it does not help


def test_accepted_credentials_are_not_hashed_again_within_the_cache_ttl() -> None:
    checker = CountingAuthenticator()
    cache = AuthCache(ttl=30)
    query = Query(client_id="c", username="alice", password=b"pw")
    for now in (0, 10, 29):
        authenticate(query, "addr", checker, ConnectionRegistry(60), now, cache)
    authenticate(query, "addr", checker, ConnectionRegistry(60), 31, cache)
    assert len(checker.seen) == 2
    with pytest.raises(Unauthorized):  # another password is checked, and refused
        authenticate(Query(client_id="c", username="alice", password=b"guess"), "addr", checker,
                     ConnectionRegistry(60), 1, cache)


class SlowAuthenticator(CountingAuthenticator):
    """Says a password check is expensive: it must run off the event loop."""

    def quick_check(self, credentials: Credentials) -> bool | None:
        return None


def test_an_expensive_check_is_handed_back_as_credentials_and_finished_later() -> None:
    checker = SlowAuthenticator()
    query = Query(client_id="c", username="alice", password=b"pw")
    cache = AuthCache()
    step = begin_login(query, "addr", checker, ConnectionRegistry(60), 0, cache)
    assert step == Credentials("coap", "c", "alice", b"pw", "addr") and checker.seen == []
    identity = finish_login(query, "addr", checker.authenticate(step), 0, cache)
    assert identity.username == "alice"
    assert begin_login(query, "addr", checker, ConnectionRegistry(60), 1, cache) == identity  # cached now
    with pytest.raises(Unauthorized):
        finish_login(query, "addr", False, 0)
