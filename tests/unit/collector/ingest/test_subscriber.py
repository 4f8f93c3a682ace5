"""The subscriber: acks only on the connection that delivered, subscriptions only for a new session."""

from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as paho
import pytest

from collector.config import MqttConfig
from collector.ingest.subscriber import Subscriber
from collector.ingest.writer import Message

OK = SimpleNamespace(is_failure=False)
LOST = SimpleNamespace(is_failure=True)


class Queue:
    """Stands in for the writer: keeps what the subscriber queues."""

    def __init__(self) -> None:
        self.items: list[Message] = []

    def put(self, item: Message) -> None:
        self.items.append(item)


@pytest.fixture
def queued() -> Queue:
    return Queue()


class Sent:
    """What the subscriber sent the broker: acks (by packet id) and subscriptions."""

    def __init__(self) -> None:
        self.acks: list[int] = []
        self.subscriptions: list[Any] = []

    def ack(self, mid: int, _qos: int) -> None:
        self.acks.append(mid)

    def subscribe(self, topics: Any) -> None:
        self.subscriptions.append(topics)


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def subscriber(queued: Queue, sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Subscriber:
    subscriber = Subscriber(MqttConfig(), queued)  # type: ignore[arg-type]
    monkeypatch.setattr(subscriber._client, "ack", sent.ack)
    monkeypatch.setattr(subscriber._client, "subscribe", sent.subscribe)
    return subscriber


def connect(subscriber: Subscriber, *, session_present: bool) -> None:
    subscriber._on_connect(
        subscriber._client, None, SimpleNamespace(session_present=session_present), OK, None
    )


def deliver(subscriber: Subscriber, mid: int, *, retain: bool = False) -> None:
    message = paho.MQTTMessage(mid=mid, topic=b"hezo/v1/hq/room-101-pc/status")
    message.qos = 1
    message.payload = b"{}"
    message.retain = retain
    subscriber._on_message(subscriber._client, None, message)


def test_a_stored_message_is_acknowledged_on_the_connection_that_delivered_it(
    subscriber: Subscriber, queued: Queue, sent: Sent
) -> None:
    connect(subscriber, session_present=False)
    deliver(subscriber, 7)
    [message] = queued.items
    assert message.ack is not None
    message.ack()
    assert sent.acks == [7]


def test_no_ack_once_the_delivering_connection_is_lost_even_before_the_reconnect(
    subscriber: Subscriber, queued: Queue, sent: Sent
) -> None:
    # paho queues an ack sent between the loss and the next CONNACK for the new connection, where packet id
    # 7 may name another message: the broker delivers this one again anyway.
    connect(subscriber, session_present=False)
    deliver(subscriber, 7)
    subscriber._on_disconnect(subscriber._client, None, None, LOST, None)
    [message] = queued.items
    assert message.ack is not None
    message.ack()
    connect(subscriber, session_present=True)
    message.ack()
    assert sent.acks == []


def test_subscribes_for_a_new_session_only(subscriber: Subscriber, sent: Sent) -> None:
    connect(subscriber, session_present=False)
    assert len(sent.subscriptions) == 1
    assert subscriber.wait_subscribed(0) is False  # until the broker acknowledges it
    subscriber._on_disconnect(subscriber._client, None, None, LOST, None)
    # The broker kept the session and its subscriptions: subscribing again would make it send every retained
    # message again.
    connect(subscriber, session_present=True)
    assert len(sent.subscriptions) == 1
    assert subscriber.wait_subscribed(0) is True


def test_a_retained_delivery_is_marked_retained(subscriber: Subscriber, queued: Queue) -> None:
    connect(subscriber, session_present=False)
    deliver(subscriber, 1, retain=True)
    deliver(subscriber, 2)
    assert [message.retained for message in queued.items] == [True, False]
