"""Wake-ups between processes on SQLite: each worker listens on a local datagram socket whose address it records
in the ``workers`` table, and a process that commits new work pokes every address it finds there.

SQLite has no LISTEN/NOTIFY, and polling alone makes an answer from another process wait for the worker's next poll.
A poke is one empty datagram, best effort: a lost one, a stale address of a dead worker or a full socket buffer
only means the worker notices at its next poll, as before. Linux uses an abstract Unix socket (nothing to clean up,
gone with its process); elsewhere a UDP port on 127.0.0.1. Only workers on this host are poked.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import uuid

_ABSTRACT = sys.platform.startswith("linux")
HOST = socket.gethostname()
# The live workers of this host that listen for wake-ups (driver SQL, for callers without SQLAlchemy).
ADDRESSES = "SELECT wake_address FROM workers WHERE wake_address IS NOT NULL AND host = ?"
_PENDING = "statemill_wake"  # connection.info key: the addresses to poke when the transaction commits
_COMMITTED = "statemill_wake_committed"  # ... and once it has: poked when the connection returns to the pool


class WakeSocket:
    """The worker's end: a bound datagram socket; ``wait()`` returns when a poke arrives (or after ``timeout``)."""

    def __init__(self) -> None:
        if _ABSTRACT:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            name = f"statemill-wake-{os.getpid()}-{uuid.uuid4().hex}"
            self._sock.bind("\0" + name)
            self.address = "unix:@" + name
        else:  # pragma: no cover - macOS, Windows
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind(("127.0.0.1", 0))
            self.address = "udp:127.0.0.1:%d" % self._sock.getsockname()[1]

    def wait(self, timeout: float) -> bool:
        """Block until a poke arrives (True, after draining any others queued) or ``timeout`` passes (False)."""
        try:
            self._sock.settimeout(timeout)
            self._sock.recv(64)
        except OSError:  # the timeout passed, or the socket was closed (the worker stopped)
            return False
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(64)
        except OSError:  # BlockingIOError: nothing more queued
            pass
        return True

    def close(self) -> None:
        self._sock.close()


_sender: socket.socket | None = None
_sender_inet: socket.socket | None = None
_lock = threading.Lock()


def poke(addresses) -> None:
    """Send one empty datagram to each address (as WakeSocket.address spells them). Never raises and never blocks:
    an address nobody listens on any more, or one that is not an address at all, is skipped."""
    global _sender, _sender_inet
    for address in addresses:
        try:
            kind, _, where = address.partition(":")
            if kind == "unix" and where.startswith("@"):
                with _lock:
                    if _sender is None:
                        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                        _sender.setblocking(False)
                    _sender.sendto(b"", "\0" + where[1:])
            elif kind == "udp":
                host, _, port = where.rpartition(":")
                with _lock:
                    if _sender_inet is None:
                        _sender_inet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        _sender_inet.setblocking(False)
                    _sender_inet.sendto(b"", (host, int(port)))
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # a dead worker (ECONNREFUSED), a full buffer (EAGAIN), a malformed address


# -- the committing side: read the live workers' addresses in the transaction, poke them once it has committed
def on_commit(conn) -> None:
    """Poke every live worker on this host once ``conn``'s transaction has committed (SQLite). The addresses are
    read afresh each time: a cached "nobody listens" would leave a worker that just started asleep until its poll.

    Not at SQLAlchemy's ``commit`` event, which comes before the database's commit: a worker woken then could read
    the old state (its reads take no lock) and go back to sleep. The poke goes when the connection returns to the
    pool, right after the commit of an ``engine.begin()`` block."""
    import sqlalchemy as sa

    from .store.schema import workers

    found = conn.execute(sa.select(workers.c.wake_address).where(workers.c.wake_address.is_not(None),
                                                                  workers.c.host == HOST)).scalars().all()
    if not found:
        return
    engine = conn.engine
    if not sa.event.contains(engine, "commit", _commit):
        sa.event.listen(engine, "commit", _commit)
        sa.event.listen(engine, "rollback", _rollback)
        sa.event.listen(engine, "checkin", _checkin)
    conn.info[_PENDING] = found


def _commit(conn) -> None:
    found = conn.info.pop(_PENDING, None)
    if found:
        conn.info[_COMMITTED] = found


def _rollback(conn) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_COMMITTED, None)


def committed(conn) -> None:
    """Poke what ``conn``'s last commit owes now, for a connection that stays checked out (a worker's frame thread
    keeps its own) and so never reaches the pool's checkin."""
    found = conn.info.pop(_COMMITTED, None)
    if found:
        poke(found)


def _checkin(_dbapi_connection, record) -> None:
    found = record.info.pop(_COMMITTED, None) if record is not None else None
    if found:
        poke(found)
