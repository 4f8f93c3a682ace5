"""The collector's MQTT session in a process of its own (``mqtt.receiver: process``, the default).

paho reads and decodes every packet in Python, and so does the writer with what it stores: in one process the
two take turns on one interpreter lock, and the broker's stream is drained no faster than both together. Here
the session runs in a child process, ``python -m collector.ingest.receiver``, that does nothing else:

- the child forwards what the broker delivers, in order, in frames of many messages (``Outbox``), and sends
  the acks the collector returns. It holds no message the broker does not hold too: losing it loses nothing;
- in the collector, a thread (``Receiver``) turns each frame into messages for the writer, and sends the acks
  of each stored batch back in one frame. It does little else: decoding and validating there, to overlap the
  writer's waits on the database, made ingest slower (each time the database answers, the writer waits for
  the interpreter lock while that thread holds it).

The two talk over a socket pair made for the child (no address anyone else could reach), in frames of a length
and a pickle; the collector sends the session's settings, password included, as the first frame, never on the
command line or in the environment. Acks keep their rule: the child sends an ack only on the broker connection
that delivered the message (``Session.ack``), and acks meant for a child that has gone are dropped with it.

Backpressure runs end to end: when the writer's queue is full the collector stops reading frames, the socket
fills, the child's outbox fills (``OUTBOX_LIMIT``), and paho's thread waits, so QoS 1 messages wait in the
broker. Acks travel the other way on their own thread in the child, which never waits on paho, so this cannot
deadlock.

If the child dies, the collector starts another (after 1 s, doubling to 30 s); the broker delivers the
messages the first one had not had acknowledged again, and their identities make that harmless. If the
collector dies, the child reads the end of its socket and leaves at once, so no orphan holds the session's
client id. The child ignores SIGINT and SIGTERM: the collector decides when it stops.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from collector.ingest.session import Session, SessionSettings
from common.logs import configure_logging, current_format

if TYPE_CHECKING:
    import paho.mqtt.client as paho

    from collector.config import MqttConfig
    from collector.ingest.writer import Inbox
    from collector.metrics import Metrics

log = logging.getLogger(__name__)

#: Messages per frame at most, payload bytes per frame beyond which no more are added (a single larger payload
#: goes alone: the broker's ``max_packet_size`` bounds it), and how long (seconds) the child waits for more
#: before it sends a frame.
FRAME_MESSAGES = 500
FRAME_BYTES = 4 * 1024 * 1024
FRAME_WAIT = 0.005
#: Messages the child holds that the collector has not read yet; past this paho's thread waits.
OUTBOX_LIMIT = 2_000
#: Restarting a child that died: the first delay and the longest (seconds).
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
#: How long ``stop`` waits for the child to disconnect and leave before it kills it (seconds).
STOP_TIMEOUT = 10.0

_LENGTH = struct.Struct("!I")

#: A message as the child forwards it: (connection, mid, qos, retain, dup, topic, payload).
Forwarded = tuple[int, int, int, bool, bool, str, bytes]


def send_frame(sock: socket.socket, lock: threading.Lock, frame: object) -> None:
    """Send one frame (a length, then a pickle of ``frame``) as a whole, even with several senders."""
    data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        sock.sendall(_LENGTH.pack(len(data)))
        sock.sendall(data)


class _PlainData(pickle.Unpickler):
    """Unpickles tuples, lists, strings, bytes, numbers and None only: what the receiver sends. The receiver
    parses what the network sends, so the collector does not let its frames name any class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a receiver frame may not name {module}.{name}")


def read_frame(stream: BinaryIO, *, plain: bool = False) -> Any:
    """The next frame; ``EOFError`` when the other side has closed (or died).

    ``plain``: built-in data only (the collector reading the receiver); else anything picklable (the receiver
    reading its settings from the collector, which started it).
    """
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError("the other side closed the socket")
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError("the other side closed the socket within a frame")
    if plain:
        return _PlainData(io.BytesIO(data)).load()
    return pickle.loads(data)  # noqa: S301 - from the collector that started this process, over its socket pair


def _payload_size(item: Forwarded | tuple[str, bool, bool]) -> int:
    last = item[-1]  # a forwarded message's payload, or a state's flag
    return len(last) if isinstance(last, bytes) else 0


# -- the child ------------------------------------------------------------------------------------------


class Outbox:
    """What the child received and the collector has not read yet, sent in frames by a thread of its own.

    Items are forwarded messages and, in order with them, the session's state (``("session", connected,
    subscribed)``), so the collector sees a reconnect where it happened in the stream.
    """

    def __init__(self, sock: socket.socket, lock: threading.Lock) -> None:
        self._sock = sock
        self._send_lock = lock
        self._items: list[Forwarded | tuple[str, bool, bool]] = []
        self._bytes = 0  # payload bytes in ``_items``
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hezo-receiver-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, item: Forwarded | tuple[str, bool, bool]) -> None:
        """Queue ``item``, waiting while the outbox is full (paho's thread then stops reading the broker)."""
        with self._ready:
            while len(self._items) >= OUTBOX_LIMIT and not self._closed:
                self._ready.wait(0.1)
            if self._closed:
                return  # leaving: the broker keeps it
            self._items.append(item)
            self._bytes += _payload_size(item)
            if len(self._items) in (1, FRAME_MESSAGES) or self._bytes >= FRAME_BYTES:
                self._ready.notify_all()

    def close(self) -> None:
        """Send what is queued, then end the thread."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(STOP_TIMEOUT)

    def _run(self) -> None:
        try:
            while (items := self._next_frame()) is not None:
                send_frame(self._sock, self._send_lock, items)
        except OSError:
            return  # the collector is gone; the main thread sees it too and ends the process
        except BaseException as exc:  # noqa: BLE001 - without this thread, paho's would soon wait for ever
            _fail("sending a frame", exc)

    def _next_frame(self) -> list[Forwarded | tuple[str, bool, bool]] | None:
        """The next frame's items, once there are some; None once closed and empty."""
        with self._ready:
            while not self._items and not self._closed:
                self._ready.wait()
            if not self._items:
                return None
            if len(self._items) < FRAME_MESSAGES and self._bytes < FRAME_BYTES and not self._closed:
                self._ready.wait(FRAME_WAIT)  # a few more arrive while we wait: fewer, fuller frames
            count, size = 0, 0
            for item in self._items[:FRAME_MESSAGES]:
                if count and size >= FRAME_BYTES:
                    break
                count += 1
                size += _payload_size(item)
            items = self._items[:count]
            del self._items[:count]
            self._bytes -= size
            self._ready.notify_all()  # room for an ``add`` waiting on a full outbox
            return items


class ForwardingSession(Session):
    """The session in the child: every message and every change of state goes to the outbox."""

    def __init__(self, config: SessionSettings, outbox: Outbox) -> None:
        super().__init__(config)
        self._outbox = outbox

    def _deliver(self, message: paho.MQTTMessage, connection: int) -> None:
        try:
            payload, retain, dup = bytes(message.payload), bool(message.retain), bool(message.dup)
            self._outbox.add((connection, message.mid, message.qos, retain, dup, message.topic, payload))
        except BaseException as exc:  # noqa: BLE001 - whatever it is, this thread must not end unseen
            _fail("forwarding a message", exc)

    def _changed(self) -> None:
        try:
            with self._lock:
                connected = self._connected
            self._outbox.add(("session", connected, self._subscribed.is_set()))
        except BaseException as exc:  # noqa: BLE001 - whatever it is, this thread must not end unseen
            _fail("forwarding the session's state", exc)


def _fail(doing: str, exc: BaseException) -> None:
    """An error on paho's thread: that thread would end and nothing more be read, unseen. Leave instead: the
    collector starts another receiver, and the broker keeps what was not acknowledged."""
    log.error("the receiver failed %s; leaving", doing, exc_info=exc)
    os._exit(1)


def child_main(fd: int) -> int:
    """The receiver process: serve the collector on socket ``fd`` until it says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    stream = sock.makefile("rb")
    try:
        settings = read_frame(stream)
    except EOFError:
        return 1
    configure_logging(settings["log_level"], settings.get("log_format", "text"))
    config = settings["session"]
    lock = threading.Lock()
    outbox = Outbox(sock, lock)
    session = ForwardingSession(config, outbox)
    outbox.start()
    session.start()
    try:
        while True:
            frame = read_frame(stream)
            if frame == "stop":
                break
            for connection, mid, qos in frame:
                session.ack(mid, qos, connection)
    except (EOFError, OSError) as exc:
        log.warning("the collector has gone (%s); leaving", exc)
        os._exit(0)  # at once: paho's thread may be waiting on a full outbox that nobody reads
    outbox.close()  # first: paho's thread may be waiting for room in it
    session.stop()  # after the acks above: paho sends them before its DISCONNECT
    return 0


# -- the collector's side ---------------------------------------------------------------------------------


class _Link:
    """One child process and its socket; acks for it gather here until the writer flushes them."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.lock = threading.Lock()
        self.acks: list[tuple[int, int, int]] = []
        self.closed = False

    def ack(self, connection: int, mid: int, qos: int) -> None:
        self.acks.append((connection, mid, qos))

    def flush(self) -> None:
        if not self.acks or self.closed:
            return
        acks, self.acks = self.acks, []
        send_frame(self.sock, self.lock, acks)


class Receiver:
    """The collector's side of the receiver process: the same face as ``subscriber.Subscriber``.

    It does as little as it can per message: whatever it does, the writer waits for the interpreter lock that
    long. ``flush_acks`` is for the writer to call after each stored batch.
    """

    def __init__(
        self,
        config: MqttConfig,
        writer: Inbox,
        *,
        now: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._writer = writer
        self._now = now
        self._metrics = metrics
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._connected = False
        self._link: _Link | None = None
        self._linking = threading.Lock()  # a new link and ``stop`` cannot miss each other
        self._thread = threading.Thread(target=self._run, name="hezo-collector-receiver", daemon=True)

    def start(self) -> None:
        """Start the child process (and start it again whenever it dies, until ``stop``)."""
        self._thread.start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the child is connected with the subscriptions in place; False on timeout."""
        return self._subscribed.wait(timeout)

    def connected(self) -> bool:
        """True while the child runs and is connected to the broker."""
        return self._connected

    @property
    def pid(self) -> int | None:
        """The receiver process's id while it runs."""
        link = self._link
        return None if link is None or link.closed else link.process.pid

    def flush_acks(self) -> None:
        """Send the acks gathered since the last call to the child, in one frame (the writer's thread)."""
        link = self._link
        if link is not None:
            try:
                link.flush()
            except OSError as exc:
                # The child is gone, and its broker connection with it: the broker delivers these again.
                log.warning("could not hand acks to the receiver process: %s", exc)

    def stop(self) -> None:
        """Have the child disconnect (after the acks sent so far) and leave; the broker keeps the session."""
        with self._linking:
            self._stopping.set()
            link = self._link
        if link is not None:
            self._say_stop(link)
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT + 5)

    # -- the receiving thread ---------------------------------------------------------------------

    def _run(self) -> None:
        delay = FIRST_RESTART_DELAY
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self._serve()
            except Exception:
                log.exception("the receiver process failed")
            if self._stopping.is_set():
                return
            if time.monotonic() - began > 60:
                delay = FIRST_RESTART_DELAY  # it ran a good while: not a crash loop
            log.error("the receiver process ended; starting another in %.0f s", delay)
            if self._metrics is not None:
                self._metrics.receiver_restarts.inc()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_DELAY)

    def _spawn(self) -> _Link:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(  # this interpreter, a fixed module, no shell
                # -P: not the working directory first on its path (whatever lies there named ``collector``
                # would get the broker password); the collector's own path instead.
                [sys.executable, "-P", "-m", "collector.ingest.receiver", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)},
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        link = _Link(process, ours)
        settings = {
            "log_level": logging.getLogger().getEffectiveLevel(),
            "log_format": current_format(),
            "session": SessionSettings.of(self._config),
        }
        try:
            send_frame(ours, link.lock, settings)
        except OSError:  # it died at once: leave no zombie behind
            ours.close()
            process.kill()
            process.wait()
            raise
        log.info("receiver process %d started", process.pid)
        return link

    @staticmethod
    def _say_stop(link: _Link) -> None:
        with contextlib.suppress(OSError):  # gone already
            send_frame(link.sock, link.lock, "stop")

    def _serve(self) -> None:
        link = self._spawn()
        with self._linking:
            self._link = link
            stopping = self._stopping.is_set()
        if stopping:  # ``stop`` came while this one started: it leaves at once, cleanly
            self._say_stop(link)
        stream = link.sock.makefile("rb")
        try:
            while True:
                try:
                    items = read_frame(stream, plain=True)
                except (EOFError, OSError, pickle.UnpicklingError) as exc:
                    if not self._stopping.is_set():
                        log.error("lost the receiver process %d: %s", link.process.pid, exc)  # noqa: TRY400
                    return
                self._take(link, items)
        finally:
            link.closed = True
            self._connected = False
            self._subscribed.clear()
            stream.close()
            link.sock.close()
            self._end(link.process)

    def _take(self, link: _Link, items: list[Any]) -> None:
        """Queue a frame's messages for the writer (waiting while its queue is full)."""
        from collector.ingest.writer import Message

        received_at = self._now()  # the child sent the frame within a few ms of receiving its first message
        put = self._writer.put
        for item in items:
            if len(item) == 3:
                _, connected, subscribed = item
                self._connected = connected
                if subscribed:
                    self._subscribed.set()
                else:
                    self._subscribed.clear()
                continue
            connection, mid, qos, retain, dup, topic, payload = item
            ack = functools.partial(link.ack, connection, mid, qos) if qos else None
            put(Message(topic, payload, received_at, ack, retain, dup))

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error(  # noqa: TRY400 - a timeout, not an error to trace
                "receiver process %d did not leave in %.0f s; killing it", process.pid, STOP_TIMEOUT
            )
            process.kill()
            code = process.wait()
        if code != 0 and not self._stopping.is_set():
            log.error("receiver process %d exited with %d", process.pid, code)


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1])))
