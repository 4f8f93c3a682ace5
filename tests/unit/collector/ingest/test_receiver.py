"""Both ends of the receiver process over a real socket pair: frames in order, backpressure, acks in bulk."""

import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from collector.config import MqttConfig
from collector.ingest import receiver
from collector.ingest.receiver import FRAME_MESSAGES, Outbox, Receiver, _Link, read_frame, send_frame
from collector.ingest.writer import Message
from tests.support.collector import T0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def forwarded(number: int) -> tuple[int, int, int, bool, str, bytes]:
    return (1, number, 1, False, False, f"hezo/v1/hq/pc-{number % 3}/telemetry", b"payload %d" % number)


def closed_and_read(outbox: Outbox, ours: socket.socket, theirs: socket.socket) -> list[list[object]]:
    """Close the outbox (it sends what it holds), then every frame that arrived."""
    outbox.close()
    ours.shutdown(socket.SHUT_WR)
    stream = theirs.makefile("rb")
    frames = []
    while True:
        try:
            frames.append(read_frame(stream))
        except EOFError:
            return frames


def test_the_outbox_forwards_everything_in_order_in_frames_of_at_most_the_frame_size(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    outbox = Outbox(ours, threading.Lock())
    outbox.start()
    sent = [forwarded(n) for n in range(1, 1_201)]
    for item in sent:
        outbox.add(item)
    outbox.add(("session", False, False))
    frames = closed_and_read(outbox, ours, theirs)
    assert [item for frame in frames for item in frame] == [*sent, ("session", False, False)]
    assert max(len(frame) for frame in frames) <= FRAME_MESSAGES
    assert len(frames) >= 3


def test_a_full_outbox_holds_back_the_network_thread_until_the_collector_reads(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver, "OUTBOX_LIMIT", 3)
    ours, theirs = pair
    outbox = Outbox(ours, threading.Lock())  # not started: nothing is sent yet
    for number in range(3):
        outbox.add(forwarded(number))
    fourth = threading.Thread(target=outbox.add, args=(forwarded(3),))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive()  # paho's thread would be waiting here, reading nothing more from the broker
    outbox.start()
    fourth.join(10)
    assert not fourth.is_alive()
    frames = closed_and_read(outbox, ours, theirs)
    assert [item for frame in frames for item in frame] == [forwarded(n) for n in range(4)]


class Queued:
    """Stands in for the writer."""

    def __init__(self) -> None:
        self.items: list[Message] = []

    def put(self, item: Message) -> None:
        self.items.append(item)


def test_frames_become_messages_in_order_and_their_acks_go_back_in_one_frame(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    queued = Queued()
    receiver_ = Receiver(MqttConfig(), queued, now=lambda: T0)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    link = _Link(process, ours)
    receiver_._link = link
    receiver_._take(
        link,
        [
            ("session", True, True),
            (4, 17, 1, False, False, "hezo/v1/hq/pc/event", b"one"),
            (4, 0, 0, True, False, "hezo/v1/hq/pc/status", b"two"),
            (4, 18, 1, False, True, "hezo/v1/hq/pc/event", b"three"),
        ],
    )
    assert receiver_.connected()
    assert receiver_.wait_subscribed(0)
    assert [(m.topic, m.payload, m.retained, m.redelivered, m.received_at) for m in queued.items] == [
        ("hezo/v1/hq/pc/event", b"one", False, False, T0),
        ("hezo/v1/hq/pc/status", b"two", True, False, T0),
        ("hezo/v1/hq/pc/event", b"three", False, True, T0),
    ]
    assert queued.items[1].ack is None  # QoS 0: nothing to acknowledge
    for message in queued.items:
        if message.ack is not None:
            message.ack()
    receiver_.flush_acks()
    receiver_.flush_acks()  # nothing more gathered: no frame
    send_frame(ours, link.lock, "end")
    stream = theirs.makefile("rb")
    assert read_frame(stream) == [(4, 17, 1), (4, 18, 1)]
    assert read_frame(stream) == "end"


def test_acks_for_a_receiver_that_has_gone_are_dropped(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    link = _Link(process, ours)
    link.ack(1, 5, 1)
    link.closed = True
    link.flush()  # nothing sent: the broker delivers the message again to the next receiver
    send_frame(ours, link.lock, "end")
    assert read_frame(theirs.makefile("rb")) == "end"


def test_settings_reach_the_child_whole_and_print_without_the_password() -> None:
    from collector.ingest.session import SessionSettings

    config = MqttConfig.model_validate({"username": "hezo", "password": "s3cret"})
    settings = SessionSettings.of(config)
    assert settings.password == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str({"session": settings})


def test_frames_stop_growing_at_the_byte_cap(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver, "FRAME_BYTES", 100)
    ours, theirs = pair
    outbox = Outbox(ours, threading.Lock())
    big = [(1, n, 1, False, "t", bytes(60)) for n in range(5)]
    for item in big:
        outbox.add(item)
    outbox.start()
    frames = closed_and_read(outbox, ours, theirs)
    assert [item for frame in frames for item in frame] == big
    assert [len(frame) for frame in frames] == [2, 2, 1]  # 120 bytes is past the cap: no third one


def test_an_outbox_that_cannot_send_ends_the_receiver_instead_of_stalling_it(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(receiver.os, "_exit", exits.append)

    def broken(*_: object) -> None:
        raise ValueError("cannot pickle this")

    monkeypatch.setattr(receiver, "send_frame", broken)
    outbox = Outbox(pair[0], threading.Lock())
    outbox.add(forwarded(1))
    outbox.start()
    outbox._thread.join(10)
    assert exits == [1]  # the collector sees the end of the socket and starts another receiver


def test_a_stop_right_after_the_start_ends_the_receiver_process_cleanly() -> None:
    from tests.support.mosquitto import free_port

    receiver_ = Receiver(MqttConfig(port=free_port()), Queued(), now=lambda: T0)  # no broker there
    receiver_.start()
    receiver_.stop()
    assert not receiver_._thread.is_alive()
    link = receiver_._link
    if link is not None:  # it had started: it was told to stop, and was reaped
        assert link.process.returncode == 0


def test_the_collector_reads_only_plain_data_from_its_receiver(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # The receiver parses what the network sends: its frames may not name a class or a function to call.
    ours, theirs = pair
    send_frame(ours, threading.Lock(), [forwarded(1), ("session", True, True)])
    send_frame(ours, threading.Lock(), [(1, 2, 1, False, "t", b"x", T0)])  # a datetime names its class
    stream = theirs.makefile("rb")
    assert read_frame(stream, plain=True) == [forwarded(1), ("session", True, True)]
    with pytest.raises(pickle.UnpicklingError, match=r"may not name datetime\.datetime"):
        read_frame(stream, plain=True)
