"""A lean load generator for the connect + subscribe scenario: raw non-blocking sockets on epoll.

With asyncio clients (a Protocol, three futures and a task per client) the generator needed
about 70 us of CPU per client, more than mosquitto spends: against mosquitto it ran at a whole
core and the row measured our client, not the broker (both brokers came out near 15,000
clients/s). Here a client is a socket and a state number, and the CONNECT and SUBSCRIBE
bytes are encoded before the clock starts; what is left per client is its syscalls (socket,
connect, two sends, two receives, close) and a few lines of Python.

It polls without sleeping. On loopback the kernel runs the receiving side of a write in the
writer's context: a broker writing to a client asleep in epoll_wait pays for waking it (on
this VM a cross-CPU wake-up, 10-20 us). A generator that sleeps whenever the broker is slower
than it would bill the slower broker for every wake-up (ours went from about 50 to 80 us of
CPU per client), and a busy one bills nobody; so it is always busy, on its own core.

Each client connects (clean session, keep-alive 0), waits for its CONNACK, subscribes to
``devices/cs<i>/cmd`` at QoS 1, waits for its SUBACK and closes; `window` clients are under
way at a time, as a fleet reconnecting after an outage.
"""

from __future__ import annotations

import errno
import select
import socket
import time

from adapters.mqtt.codec import encode
from adapters.mqtt.packets import Connect, Subscribe, SubscriptionRequest

CONNACK_SIZE = 4  # 3.1.1 CONNACK: fixed header, flags, return code
SUBACK_SIZE = 5  # one topic filter: fixed header, packet id, one return code
CONNECTING, AWAIT_CONNACK, AWAIT_SUBACK = 0, 1, 2


class ConnectLoadError(RuntimeError):
    """A client was refused, reset or not answered in time."""


def handshakes(count: int) -> list[tuple[bytes, bytes]]:
    """The CONNECT and SUBSCRIBE of each client, encoded."""
    return [(encode(Connect(client_id=f"cs{i}", protocol_level=4, keep_alive=0), 4),
             encode(Subscribe(1, (SubscriptionRequest(f"devices/cs{i}/cmd", 1),)), 4)) for i in range(count)]


def connect_subscribe(host: str, port: int, packets: list[tuple[bytes, bytes]], window: int,
                      timeout: float) -> float:
    """Run every client of `packets`, `window` at a time; the seconds it took. Raises ConnectLoadError."""
    poller = select.epoll()
    clients: dict[int, tuple[socket.socket, int, int, bytearray]] = {}  # fd -> socket, index, state, input
    started = done = 0
    total = len(packets)
    start = time.perf_counter()
    deadline = start + timeout

    def open_next() -> None:
        nonlocal started
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the asyncio clients and mosquitto_sub do
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise ConnectLoadError(f"connect: {errno.errorcode.get(code, code)}")
        clients[sock.fileno()] = (sock, started, CONNECTING, bytearray())
        poller.register(sock.fileno(), select.EPOLLOUT)
        started += 1

    try:
        while started < min(window, total):
            open_next()
        while done < total:
            events = poller.poll(0)  # spin, never sleep: see the module docstring
            if not events:
                if time.perf_counter() > deadline:
                    raise ConnectLoadError(f"{total - done} clients unanswered after {timeout} s")
                continue
            for fd, mask in events:
                sock, index, state, data = clients[fd]
                try:
                    if mask & (select.EPOLLERR | select.EPOLLHUP) and state == CONNECTING:
                        raise ConnectLoadError(f"client {index}: connection refused or reset")
                    if state == CONNECTING:
                        sock.send(packets[index][0])
                        poller.modify(fd, select.EPOLLIN)
                        clients[fd] = (sock, index, AWAIT_CONNACK, data)
                        continue
                    chunk = sock.recv(64)
                    if not chunk:
                        raise ConnectLoadError(f"client {index}: closed by the broker")
                    data += chunk
                    if state == AWAIT_CONNACK and len(data) >= CONNACK_SIZE:
                        if data[0] != 0x20 or data[3] != 0:
                            raise ConnectLoadError(f"client {index}: CONNACK {bytes(data[:CONNACK_SIZE]).hex()}")
                        del data[:CONNACK_SIZE]
                        sock.send(packets[index][1])
                        clients[fd] = (sock, index, AWAIT_SUBACK, data)
                    elif state == AWAIT_SUBACK and len(data) >= SUBACK_SIZE:
                        if data[0] != 0x90 or data[4] > 2:
                            raise ConnectLoadError(f"client {index}: SUBACK {bytes(data[:SUBACK_SIZE]).hex()}")
                        poller.unregister(fd)
                        del clients[fd]
                        sock.close()
                        done += 1
                        if started < total:
                            open_next()
                except OSError as exc:  # reset or refused by the broker mid-handshake
                    raise ConnectLoadError(f"client {index}: {exc}") from None
        return time.perf_counter() - start
    finally:
        for sock, _, _, _ in clients.values():
            sock.close()
        poller.close()
