"""Which node holds each MQTT session, and handing a session over to the node a client reconnects to.

A JetStream key-value bucket (``<prefix>_sessions``, `replicas` copies) maps each client id to
the node that holds its session and the user who owns it. A CONNECT on node B claims its client
id before it is accepted (`ClusterSessions.claim`):

1. B creates the key, naming itself; if it exists and names B, the session is local: done.
2. If it names another node A, B replaces it only if it is still the revision B read
   (JetStream's compare-and-set). Two nodes racing for one client id: one update wins, the other
   reads again and finds the winner, so exactly one node holds a session at a time; the loser's
   CONNECT then takes the session from the winner the same way (the later CONNECT wins, as on
   one node).
3. B asks A for the session on ``<prefix>.ctl.sess.<A>`` (request/reply): A takes over the
   connection it may still hold (MQTT 5 DISCONNECT 0x8E, the will handled as on one node),
   takes the session off its registry and answers with it (gateway/cluster/handover.py); B
   adopts it, and the CONNECT resumes it: session present, in-flight messages resent with DUP,
   the queue in order. With clean start A ends the session (its will published) and answers
   nothing.

With logins checked, a key owned by another user refuses the CONNECT (0x87), as on one node.
While NATS is unreachable (or a claim cannot finish within `CLAIM_TIMEOUT`) the node serves the
client alone, as it serves its local clients then: availability first, counted as `unclaimed`. When
a session ends on its node the key is deleted (only if that node still holds it). A node that
is gone (no heartbeat) is not asked: the session starts afresh, its queue lost with that node
(what kill -9 of a node must not lose needs the queue in JetStream: the README says what is left).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

import nats
from nats.js import api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from core.fabric import SessionClaim
from core.session_handover import adopt_session, export_session
from core.session_registry import SessionRegistry
from core.stores.codec import CodecError

from gateway.cluster.handover import decode_snapshot, encode_session, encode_snapshot
from gateway.cluster.session_state import Replicator, SessionUnavailable, state_subject
from gateway.cluster.subjects import CONTROL

log = logging.getLogger("rosettamq.cluster")

ATTEMPTS = 8  # compare-and-set rounds before a claim gives up (each lost round means another node moved)
ASK_TIMEOUT = 3.0  # seconds the previous holder has to hand a session over
CLAIM_TIMEOUT = 25.0  # seconds a claim may take in all before the node serves the client alone
RETRY = 0.2  # seconds between claims JetStream could not answer


def session_key(client_id: str) -> str:
    """A KV key for any client id (KV keys allow few characters): its UTF-8 in hex."""
    return "c" + client_id.encode("utf-8").hex()


class ClusterSessions:
    """This node's side of the session directory; see the module docstring."""

    def __init__(self, registry: SessionRegistry, node: str, prefix: str, replicas: int,
                 node_alive: Callable[[str], bool], replicator: Replicator) -> None:
        self.registry = registry
        self.node = node
        self.prefix = prefix
        self.replicas = replicas
        self.node_alive = node_alive
        self.replicator = replicator
        self.claims = self.handed_over = self.adopted = self.lost_with_node = self.refused = self.unclaimed = 0
        self.recovered = self.orphans = self.stale_dropped = 0
        self._kv: Any = None
        self._conn: Any = None
        self._owned: dict[str, int] = {}  # client id -> the KV revision naming this node
        self._tasks: set[asyncio.Task[None]] = set()
        registry.on_ended = self._ended
        registry.on_will = self._clean_will

    async def start(self, js: Any, conn: Any) -> None:
        """Open (or create) the bucket and answer handover requests (called once NATS is joined)."""
        bucket = f"{self.prefix}_sessions".replace(".", "_")
        try:
            self._kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await js.create_key_value(api.KeyValueConfig(
                bucket=bucket, history=1, replicas=self.replicas, storage=api.StorageType.FILE))
        self._conn = conn
        await conn.subscribe(f"{self.prefix}.{CONTROL}.sess.{self.node}", cb=self._on_request)
        await self._reconcile()

    async def _reconcile(self) -> None:
        """The sessions this node restored from its store at start: keep those the bucket still
        names it for (or names no one for), drop those another node took while it was away."""
        for client_id, session in list(self.registry.sessions.items()):
            key = session_key(client_id)
            mine = json.dumps({"node": self.node, "user": session.username}).encode()
            try:
                try:
                    self._owned[client_id] = await self._kv.create(key, mine)
                    continue
                except KeyWrongLastSequenceError:
                    entry = await self._kv.get(key)
            except Exception as exc:
                log.warning("cluster: cannot check session %r against the cluster: %r", client_id, exc)
                continue
            holder = _holder(entry.value).get("node")
            if holder == self.node:
                self._owned[client_id] = entry.revision
                continue
            self.stale_dropped += 1
            log.info("cluster: session %r moved to node %s while this node was away: its copy here is dropped",
                     client_id, holder)
            session.will = None
            self.replicator.local_only.add(client_id)  # the stream is the holder's: nothing purged there
            self.registry.release(session)

    @property
    def ready(self) -> bool:
        return self._kv is not None

    # -- claiming (the node a client connects to) ---------------------------------------------

    async def claim(self, client_id: str, username: str | None, clean_start: bool) -> SessionClaim:
        """Make this node the holder of `client_id`'s session; the session it had on another node,
        if any, is in this node's registry (offline) when this returns, for the CONNECT to resume."""
        self.claims += 1
        if self._conn is None or not self._conn.is_connected:
            self.unclaimed += 1  # NATS is away: the node serves its clients alone until it is back
            return SessionClaim()
        try:
            return await asyncio.wait_for(self._claim_retrying(client_id, username, clean_start), CLAIM_TIMEOUT)
        except SessionUnavailable:
            raise  # its session exists but cannot be read now: the CONNECT is refused (0x88), nothing lost
        except (nats.errors.Error, asyncio.TimeoutError, OSError) as exc:
            self.unclaimed += 1
            log.warning("cluster: could not claim session %r (%r): served by this node alone", client_id, exc)
            return SessionClaim()

    async def _claim_retrying(self, client_id: str, username: str | None, clean_start: bool) -> SessionClaim:
        """`_claim`, again while JetStream cannot answer (a bucket electing its leader after a NATS
        server died): the CONNECT waits up to CLAIM_TIMEOUT rather than losing its session."""
        while True:
            try:
                return await self._claim(client_id, username, clean_start)
            except (nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError,
                    nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                log.info("cluster: claim of %r waits for JetStream: %r", client_id, exc)
                await asyncio.sleep(RETRY)

    async def _claim(self, client_id: str, username: str | None, clean_start: bool) -> SessionClaim:
        key = session_key(client_id)
        mine = json.dumps({"node": self.node, "user": username}).encode()
        for _ in range(ATTEMPTS):
            try:
                self._owned[client_id] = await self._kv.create(key, mine)
                return SessionClaim()
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                continue  # deleted meanwhile: create again
            holder = _holder(entry.value)
            node = str(holder.get("node"))
            if self.registry.owners_enforced and holder.get("user") != username:
                self.refused += 1
                return SessionClaim(refused=True, owner=holder.get("user"))
            if node == self.node:
                self._owned[client_id] = entry.revision
                return SessionClaim()
            alive = self.node_alive(node)
            # A gone holder's session is read from JetStream before the key moves: if it cannot be
            # read now (a leader election), the claim fails and the key still names the old holder.
            # (with clean start too: a will it left is published as its session ends, `registry.open`)
            recovered = None if alive else await self.replicator.load_session(client_id)
            try:
                self._owned[client_id] = await self._kv.update(key, mine, last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # another node moved first: read again
            if not alive:
                return SessionClaim(snapshot=self._adopt_recovered(node, client_id, recovered, clean_start))
            return SessionClaim(snapshot=await self._take_from(node, client_id, clean_start, entry.value))
        raise RuntimeError(f"cluster: could not claim client id {client_id!r} after {ATTEMPTS} attempts")

    async def _take_from(self, node: str, client_id: str, clean_start: bool, previous: bytes) -> Any:
        request = json.dumps({"client_id": client_id, "clean_start": clean_start}).encode()
        try:
            reply = await self._conn.request(f"{self.prefix}.{CONTROL}.sess.{node}", request, timeout=ASK_TIMEOUT)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError) as exc:
            log.warning("cluster: node %s did not hand over session %r (%r): reading it from JetStream",
                        node, client_id, exc)
            try:
                recovered = await self.replicator.load_session(client_id)
            except SessionUnavailable:
                await self._give_back(client_id, previous)
                raise
            return self._adopt_recovered(node, client_id, recovered, clean_start)
        if not reply.data:
            return None
        try:
            snapshot = decode_snapshot(reply.data)
        except CodecError as exc:
            log.error("cluster: node %s sent session %r in a form this node cannot read: %s", node, client_id, exc)
            return None
        adopt_session(self.registry, snapshot)  # at once: what is published from now on reaches it here
        self.adopted += 1
        return snapshot

    async def _give_back(self, client_id: str, previous: bytes) -> None:
        """Name the previous holder again (the session could not be read): a later claim retries."""
        revision = self._owned.pop(client_id, None)
        if revision is not None:
            try:
                await self._kv.update(session_key(client_id), previous, last=revision)
            except Exception as exc:
                log.warning("cluster: could not give session %r back: %r", client_id, exc)

    def _adopt_recovered(self, node: str, client_id: str, snapshot: Any, clean_start: bool) -> Any:
        """The holder is gone: adopt what JetStream had of the session (session_state.py); with clean
        start the CONNECT then ends it, publishing the will it may have left."""
        if snapshot is None:
            if not clean_start:
                self.lost_with_node += 1
                log.warning("cluster: session %r was held by node %s, which is gone, and nothing of it is "
                            "replicated (a clean session): it starts afresh", client_id, node)
            self.replicator.purge(state_subject(self.prefix, client_id, ">"))
            return None
        adopt_session(self.registry, snapshot)
        self.recovered += 1
        log.info("cluster: session %r recovered from JetStream (node %s is gone): %d messages", client_id, node,
                 len(snapshot.deliveries))
        return snapshot

    # -- a node that died: its sessions' wills and expiry ---------------------------------------

    def node_gone(self, node: str) -> None:
        """`node` left the view: take the sessions it held (from JetStream), so that their wills and
        expiry run here; every node tries, compare-and-set gives each session to one."""
        if self._kv is None:
            return
        task = asyncio.get_running_loop().create_task(self._adopt_orphans(node))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _adopt_orphans(self, node: str) -> None:
        try:
            keys = await self._kv.keys()
        except nats.js.errors.NoKeysError:
            return
        except Exception as exc:
            log.warning("cluster: cannot list the sessions node %s held: %r", node, exc)
            return
        for key in keys:
            if self.node_alive(node):
                return  # it is back
            try:
                entry = await self._kv.get(key)
                holder = _holder(entry.value)
                if holder.get("node") != node:
                    continue
                client_id = bytes.fromhex(key[1:]).decode()
                snapshot = await self.replicator.load_session(client_id)  # before the key moves
                mine = json.dumps({"node": self.node, "user": holder.get("user")}).encode()
                revision = await self._kv.update(key, mine, last=entry.revision)
            except (KeyNotFoundError, KeyWrongLastSequenceError, ValueError):
                continue  # gone, or another node took it first
            except Exception as exc:  # SessionUnavailable too: its client's reconnect will claim it
                log.warning("cluster: cannot take over session %s of node %s: %r", key, node, exc)
                continue
            if snapshot is None:  # a clean session, online when its node died: nothing to keep
                try:
                    await self._kv.delete(key, last=revision)
                except Exception:
                    pass
                continue
            self._owned[client_id] = revision
            adopt_session(self.registry, snapshot)
            self.orphans += 1
            log.info("cluster: session %r of node %s (gone) taken over: its will and expiry run here",
                     client_id, node)

    # -- handing over (the node that held the session) ----------------------------------------

    async def _on_request(self, msg: Any) -> None:
        try:
            request = json.loads(msg.data)
            client_id, clean_start = str(request["client_id"]), bool(request["clean_start"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cluster: unreadable session request on %s: %r", msg.subject, exc)
            return
        self._owned.pop(client_id, None)  # another node holds it now (the KV says so already)
        if clean_start:
            session = self.registry.sessions.get(client_id)
            if session is not None and session.sink is not None:
                session.sink.session_taken_over()
            self.registry.discard(client_id)  # the old session ends here, its will published
            data = b""
        else:
            snapshot = export_session(self.registry, client_id)
            data = b"" if snapshot is None else encode_snapshot(snapshot)
        if data:
            self.handed_over += 1
        await self.replicator.flush()  # the session left this node in JetStream too before the new holder writes
        try:
            await msg.respond(data)
        except Exception as exc:  # the asking node is gone: the session is lost with its answer
            log.warning("cluster: could not hand session %r over: %r", client_id, exc)

    def _clean_will(self, session: Any) -> None:
        """A clean session's will goes to the stream too, as a session record: if this node dies,
        the node that takes its sessions over publishes it (persistent sessions' records go there
        through the store). Cleared when the session ends (the store's delete purges it)."""
        if session.will is None:
            self.replicator.purge_state(session.client_id, ("s",))
        else:
            self.replicator.put_state(session.client_id, ("s",), encode_session(session.stored()))

    def _ended(self, client_id: str) -> None:
        """A session ended on this node: forget it in the bucket, if this node still holds it there."""
        revision = self._owned.pop(client_id, None)
        if revision is None or self._kv is None:
            return
        task = asyncio.get_running_loop().create_task(self._forget(client_id, revision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forget(self, client_id: str, revision: int) -> None:
        if client_id in self.registry.sessions:  # it has a session here again (a local takeover, an adoption)
            self._owned.setdefault(client_id, revision)
            return
        try:
            await self._kv.delete(session_key(client_id), last=revision)
        except KeyWrongLastSequenceError:
            pass  # another node holds it by now
        except Exception as exc:
            log.warning("cluster: could not forget session %r: %r", client_id, exc)

    def describe(self) -> dict[str, int]:
        return {"claims": self.claims, "handed_over": self.handed_over, "adopted": self.adopted,
                "lost_with_node": self.lost_with_node, "refused": self.refused, "unclaimed": self.unclaimed, "recovered": self.recovered, "orphans": self.orphans, "stale_dropped": self.stale_dropped,
                "held": len(self._owned)}


def _holder(value: bytes | None) -> dict[str, Any]:
    try:
        holder = json.loads(value or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}
