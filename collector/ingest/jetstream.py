"""The collector reading a NATS JetStream cluster (``cluster.backbone: jetstream``), beside the MQTT session.

Agents speak MQTT 3.1.1 to any node of a NATS cluster; NATS stores every QoS 1 message in its ``$MQTT_msgs``
stream (replicated across the nodes), under ``$MQTT.msgs.<prefix>.<partition>.<site>...``: the cluster's
subject mapping puts each site in a partition (``{{partition(N,1)}}``, ``config/nats/``). The collector reads
each partition it holds the lease of (``collector/cluster/ownership.py``) through a durable pull consumer of
its own, so one collector at a time reads a partition, in the stream's order: every message of an agent
arrives in the order the agent sent it.

Each message goes to the writer's queue with its ack, as from the MQTT session; the writer acknowledges it
after the batch's commit (``flush_acks`` hands the acks to the event loop in one go). A message a collector
took and did not acknowledge stays in the stream.

A partition changing hands (``consumers.py``): the new holder's lease has a new generation; it creates a
consumer of its own, ``<consumer>-p<partition>-g<generation>-r<token>``, starting right after the newest
previous consumer's acknowledged floor, then deletes the previous ones. A delivery lost on the way (its
number skips one) makes the reader do the same from right after the last message it handed on. What the
previous holder had stored but not acknowledged is delivered again in order, and the message identities
make that harmless. A collector that still reads a deleted consumer (it lost its lease) gets an error and
stops reading that partition.

The consumers must exist before agents publish: NATS makes ``$MQTT_msgs`` with interest retention, so it
drops at once a message that no consumer's filter matches, and a stream's retention cannot be changed later.
``natsconnect.make_consumers`` (``hezo-collector cluster nats-setup``, run before the first agent) makes one
for every partition that has none, reading from the stream's first message, and so does the collector at
start; an empty consumer costs nothing, and stopping a collector leaves its consumers in place for the next
holder.

The partition count must be the NATS mapping's and the consumers': the receiver gives up for good (the
collector refuses to start, or /healthz says why) when a consumer on NATS was made for another count, or when
a message's partition is not the one this count gives its site (``consumers.PartitionCountError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from collector.ingest.consumers import (
    STREAM,
    SUBJECT_PREFIX,
    Consumers,
    PartitionCountError,
    guard,
    misplaced,
)
from collector.ingest.natsconnect import connect_options
from collector.ingest.writer import Inbox, Message

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg

    from collector.cluster.settings import NatsConfig

log = logging.getLogger(__name__)

#: How often (seconds) the loop looks at the partitions held, and how long one fetch waits for messages.
FOLLOW_EVERY = 0.2
FETCH_WAIT = 1.0
#: Starting the event loop again after a failure: the first delay and the longest (seconds).
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0
#: How often (seconds) a reader deletes its partition's consumers of older generations made again.
SWEEP_EVERY = 30.0
#: What ``_read_through`` says when its consumer was deleted (another collector has the partition).
_GONE = -1
#: How long (seconds) ``stop`` waits for the loop to end.
STOP_TIMEOUT = 10.0


class Partitions(Protocol):
    """What the receiver follows: the partitions this collector holds now, and each one's generation."""

    partitions: int

    def owned(self) -> frozenset[int]: ...

    def generation(self, number: int) -> int | None: ...


def topic_of(subject: str, prefix: str) -> str:
    """The MQTT topic an agent published ``subject`` to: the stream's prefix and the partition left out.

    A subject that does not have the partition where expected is returned as a topic as it stands, for the
    pipeline to reject and keep (nothing is dropped here).
    """
    tokens = subject.removeprefix(SUBJECT_PREFIX).split(".")
    ours = prefix.split("/")
    count = len(ours)
    if tokens[:count] == ours and len(tokens) > count and tokens[count].isdigit():
        del tokens[count]
    # NATS writes an MQTT topic's "/" as "." and its "." as "//".
    return "/".join(token.replace("//", ".") for token in tokens)


class JetStreamReceiver:
    """Reads the partitions this collector holds; the same face as ``subscriber.Subscriber``."""

    def __init__(
        self,
        config: NatsConfig,
        prefix: str,
        writer: Inbox,
        partitions: Partitions,
        *,
        now: Callable[[], datetime],
        make_streams: Callable[[], None] | None = None,
    ) -> None:
        """``make_streams()`` connects once to a node's MQTT listener, for NATS to make its MQTT streams when
        none exist yet (``open_mqtt_once``)."""
        self._make_streams = make_streams
        self._config = config
        self._prefix = prefix
        self._writer = writer
        self._partitions = partitions
        self._now = now
        self._subscribed = threading.Event()
        #: Why the receiver gave up for good (its partition count is not NATS's), or None.
        self._refused: PartitionCountError | None = None
        self._connected = False
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: list[tuple[int, Msg]] = []  # gathered by the writer's thread
        self._acks_lock = threading.Lock()
        #: Messages handed to the writer and not yet acknowledged, per partition (the event loop's).
        self._pending: dict[int, int] = {}
        self._reading: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="hezo-collector-jetstream", daemon=True)

    # -- the face the service sees -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until connected with a consumer for every partition; False on timeout. Raises the
        ``PartitionCountError`` the receiver gave up for: the collector must not start."""
        deadline = time.monotonic() + timeout
        while not self._subscribed.wait(min(0.1, max(deadline - time.monotonic(), 0))):
            if self._refused is not None:
                raise self._refused
            if time.monotonic() >= deadline:
                return False
        return True

    def problem(self) -> str | None:
        """Why the receiver gave up reading for good (for /healthz), or None."""
        return None if self._refused is None else str(self._refused)

    def connected(self) -> bool:
        return self._connected

    def stop(self) -> None:
        """Stop reading and disconnect; the consumers and what they hold stay in the stream."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)

    def flush_acks(self) -> None:
        """Hand the acks gathered since the last call to the event loop (the writer's thread, per batch)."""
        with self._acks_lock:
            acks, self._acks = self._acks, []
        loop = self._loop
        if acks and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._send_acks, acks)
            except RuntimeError:
                return  # the loop has just ended: the stream delivers these again, harmlessly

    def drained(self, partition: int) -> bool:
        """Whether nothing of ``partition`` is being read or waits for its ack: it may be handed back."""
        return partition not in self._reading and not self._pending.get(partition, 0)

    # -- the event loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        """Run the event loop until ``stop``; when it fails (no node reachable at start), again after 1 s,
        doubling to 30 s. What was not acknowledged stays in the stream meanwhile."""
        delay = FIRST_RETRY_DELAY
        while not self._stopping.is_set():
            try:
                asyncio.run(self._main())
            except PartitionCountError as exc:
                log.error("%s", exc)  # noqa: TRY400 - the text says what to change; trying again cannot help
                self._refused = exc
                return
            except Exception as exc:  # noqa: BLE001 - said once per try, then tried again
                log.warning(
                    "the JetStream receiver failed (%s: %s); again in %.0f s", type(exc).__name__, exc, delay
                )
            finally:
                self._connected = False
                self._subscribed.clear()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _main(self) -> None:
        import nats

        self._loop = asyncio.get_running_loop()
        client = await nats.connect(
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
            error_cb=self._error,
            allow_reconnect=True,
            **connect_options(self._config),
        )
        self._connected = True
        log.info("connected to NATS at %s", client.connected_url.netloc if client.connected_url else "?")
        try:
            consumers = Consumers(client.jetstream(), self._config, self._prefix, self._partitions.partitions)
            await consumers.wait_for_stream(self._stopping, self._make_streams)
            try:
                await consumers.ensure()
            except PartitionCountError as exc:
                self._refused = exc  # before the connection closes: no reconnect said
                raise
            await guard(client, self._prefix, self._partitions.partitions, self._refuse)
            self._subscribed.set()
            await self._follow(consumers)
        finally:
            await self._close(client)

    def _refuse(self, wrong: PartitionCountError) -> None:
        if self._refused is None:
            self._refused = wrong  # ``_follow`` gives up on it

    async def _close(self, client: Nats) -> None:
        try:
            await client.drain()
        except Exception:  # leaving anyway; what was not acknowledged stays in the stream
            log.debug("NATS drain failed on stop", exc_info=True)

    async def _disconnected(self) -> None:
        self._connected = False
        if not self._stopping.is_set() and self._refused is None:
            log.warning("lost the NATS connection; reconnecting")

    async def _reconnected(self) -> None:
        self._connected = True
        log.info("reconnected to NATS")

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS: %s", exc)

    async def _follow(self, consumers: Consumers) -> None:
        """Read the partitions held, starting and stopping a reader as leases come and go."""
        readers: dict[int, tuple[int, asyncio.Task[None]]] = {}
        try:
            while not self._stopping.is_set():
                if self._refused is not None:
                    raise self._refused
                owned = self._partitions.owned()
                for number, (generation, task) in list(readers.items()):
                    held = self._partitions.generation(number)
                    if task.done() or number not in owned or held != generation:
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        del readers[number]
                        self._reading.discard(number)
                for number in sorted(owned - set(readers)):
                    now_held = self._partitions.generation(number)
                    if now_held is not None:
                        self._reading.add(number)
                        task = asyncio.create_task(self._read(consumers, number, now_held))
                        readers[number] = (now_held, task)
                await asyncio.sleep(FOLLOW_EVERY)
        finally:
            for _, task in readers.values():
                task.cancel()
            await asyncio.gather(*(task for _, task in readers.values()), return_exceptions=True)
            self._reading.clear()

    async def _read(self, consumers: Consumers, partition: int, generation: int) -> None:
        """Read ``partition`` through a consumer of this collector's own, made again past what is in hand
        whenever a delivery is lost on the way, so the writer gets an agent's messages in order."""
        after: int | None = None  # the last stream seq handed to the writer
        while True:
            try:
                name = await consumers.take_over(partition, generation, after)
                subscription = await consumers.js.pull_subscribe_bind(durable=name, stream=STREAM)
            except Exception as exc:  # noqa: BLE001 - a node leaving, a JetStream API timeout: try again
                log.warning(
                    "could not start reading partition %d (%s: %s)", partition, type(exc).__name__, exc
                )
                await asyncio.sleep(1)
                return  # ``_follow`` starts it again while the lease is held
            after = await self._read_through(
                consumers, subscription, name, partition=partition, generation=generation, after=after
            )
            if after == _GONE:
                return
            with contextlib.suppress(Exception):  # the consumer goes anyway, made again past what is in hand
                await subscription.unsubscribe()

    async def _read_through(
        self,
        consumers: Consumers,
        subscription: Any,
        name: str,
        *,
        partition: int,
        generation: int,
        after: int | None,
    ) -> int | None:
        """Hand the writer what consumer ``name`` delivers, in order, until a delivery is lost on the way
        (its numbers skip one: a node died with it, or the connection did): then the stream seq of the last
        message handed on, to read again from right after it. ``_GONE`` when the consumer was deleted."""
        from nats.errors import TimeoutError as FetchTimeout
        from nats.js.errors import NotFoundError

        loop = asyncio.get_running_loop()
        swept = time.monotonic()
        delivered = 0
        while True:
            if time.monotonic() - swept > SWEEP_EVERY:
                swept = time.monotonic()
                with contextlib.suppress(Exception):  # next time, then
                    await consumers.sweep(partition, generation, name)
            try:
                batch = await subscription.fetch(self._config.fetch, timeout=FETCH_WAIT)
            except (TimeoutError, FetchTimeout):
                continue
            except NotFoundError:
                log.warning("consumer %s of partition %d is gone: another collector has it", name, partition)
                return _GONE
            except Exception as exc:  # noqa: BLE001 - a node leaving the cluster, a reconnect: ask again
                log.warning("fetching partition %d failed (%s: %s)", partition, type(exc).__name__, exc)
                await asyncio.sleep(1)
                continue
            if batch and (wrong := misplaced(batch[0].subject, self._prefix, self._partitions.partitions)):
                # Not handed on: they wait in the stream for a collector with the NATS mapping's count.
                self._refused = PartitionCountError(wrong)
                return _GONE
            in_order: list[Msg] = []
            lost = False
            for msg in batch:
                sequence = msg.metadata.sequence
                if sequence.consumer != delivered + 1:
                    lost = True
                    break
                delivered, after = sequence.consumer, sequence.stream
                in_order.append(msg)
            self._hand_on(partition, in_order)
            await loop.run_in_executor(None, self._put_all, self._messages(partition, in_order))
            if lost:
                log.warning(
                    "partition %d: a delivery was lost on the way; reading again after stream seq %s",
                    partition,
                    after,
                )
                return after

    def _hand_on(self, partition: int, batch: list[Msg]) -> None:
        self._pending[partition] = self._pending.get(partition, 0) + len(batch)

    def _messages(self, partition: int, batch: list[Msg]) -> list[Message]:
        received_at = self._now()
        return [
            Message(
                topic_of(msg.subject, self._prefix),
                msg.data,
                received_at,
                functools.partial(self._ack_later, partition, msg),
                redelivered=msg.metadata.num_delivered > 1,
            )
            for msg in batch
        ]

    def _put_all(self, messages: list[Message]) -> None:
        for message in messages:
            self._writer.put(message)

    def _ack_later(self, partition: int, msg: Msg) -> None:
        with self._acks_lock:
            self._acks.append((partition, msg))

    def _send_acks(self, acks: list[tuple[int, Msg]]) -> None:
        for partition, _ in acks:
            self._pending[partition] = max(self._pending.get(partition, 0) - 1, 0)
        asyncio.ensure_future(self._ack_all([msg for _, msg in acks]))  # noqa: RUF006 - ends on its own

    @staticmethod
    async def _ack_all(messages: list[Msg]) -> None:
        for msg in messages:
            try:
                await msg.ack()
            except Exception as exc:  # noqa: BLE001 - stored: at worst delivered again, harmlessly
                log.debug("ack failed: %s", exc)
