"""A TCP proxy in front of a real redis-server that can lose one reply, or
cut off the connections it carries.

``drop_reply_to(b"EVALSHA")`` arms it: the next request whose bytes contain
the pattern goes on to Redis, which runs it and answers; the proxy reads that
answer and, instead of passing it on, closes the client's connection. To the
client that is a connection cut after the request left and before the reply
came: the one case where it cannot know whether the command ran.

``cut_off()``: the connections open now carry nothing more, either way, and
stay open, as when a partition, a failover or a NAT that forgot them leaves
peers with a connection that leads nowhere; new connections work.

``lead_to(port)``: new connections go to another server (a failover behind a
stable address); a connection the target refuses is closed at once.
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = threading.Event()  # set once a reply was lost on purpose
        self._pattern: bytes | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut: list[threading.Event] = []  # one per connection: set, it is cut off
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def drop_reply_to(self, pattern: bytes) -> None:
        with self._lock:
            self._pattern = pattern

    def lead_to(self, port: int) -> None:
        self.target_port = port

    def cut_off(self) -> None:
        with self._lock:
            for cut in self._cut:
                cut.set()

    def close(self) -> None:
        _shut(self.listener)  # wakes the accepting thread (a close alone would not)
        self.listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the target is down: the client sees its connection close
                client.close()
                continue
            self._sockets += [client, server]
            armed = threading.Event()  # this connection's next reply is to be lost
            cut = threading.Event()
            with self._lock:
                self._cut.append(cut)
            threading.Thread(
                target=self._requests, args=(client, server, armed, cut), daemon=True
            ).start()
            threading.Thread(
                target=self._replies, args=(server, client, armed, cut), daemon=True
            ).start()

    def _requests(self, client: socket.socket, server: socket.socket, armed, cut) -> None:
        while data := _recv(client):
            if cut.is_set():
                continue  # swallowed: the client waits for an answer that never comes
            with self._lock:
                if self._pattern is not None and self._pattern in data:
                    self._pattern = None
                    armed.set()  # before Redis can answer: it has not seen it yet
            if not _send(server, data):
                break
        _shut(server)

    def _replies(self, server: socket.socket, client: socket.socket, armed, cut) -> None:
        while data := _recv(server):
            if cut.is_set():
                continue
            if armed.is_set():  # Redis ran it and answered: the client never learns
                self.dropped.set()
                break
            if not _send(client, data):
                break
        _shut(client)
        _shut(server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False  # closed: the proxy, or the other side, is done


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
