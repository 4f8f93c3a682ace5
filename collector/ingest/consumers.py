"""hezo's durable consumers on NATS's ``$MQTT_msgs`` stream: one per partition of the sites and lease
generation, named ``<consumer>-p<partition>-g<generation>`` (docs/cluster.md).

- ``ensure``: every partition has a consumer, so the stream (interest retention) keeps its messages even
  before any collector holds the partition;
- ``take_over``: the new holder's consumer starts right after the acknowledged floor of the newest one before
  it (whose holder acknowledged only what it had stored), and the older ones go;
- ``sweep``: older consumers a collector starting late made again go too.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from collector.cluster.natsmap import subject_mappings
from collector.cluster.partitions import MAX_PARTITIONS, partition_of
from collector.errors import ConflictError

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerInfo

    from collector.cluster.settings import NatsConfig

log = logging.getLogger(__name__)

#: The stream NATS's MQTT listener keeps QoS 1 messages in, and its subjects' prefix.
STREAM = "$MQTT_msgs"
SUBJECT_PREFIX = "$MQTT.msgs."


_NAME = re.compile(r"-p[0-9]+-g([0-9]+)(?:-r[0-9a-f]+)?")
#: A consumer's description: the partition count it was made for (``PartitionCountError``).
_COUNT = re.compile(r"hezo partition [0-9]+ of ([0-9]+)")


class PartitionCountError(ConflictError):
    """``cluster.partitions`` is not the number of partitions the consumers on NATS were made for."""


def consumer_name(base: str, partition: int, generation: int, restart: str | None = None) -> str:
    """``<base>-p<partition>-g<generation>``, and ``-r<restart>`` for a consumer made again within one."""
    name = f"{base}-p{partition}-g{generation}"
    return name if restart is None else f"{name}-r{restart}"


def generation_of(name: str) -> int:
    """The generation in a consumer's name; -1 for a name not made by ``consumer_name``."""
    found = _NAME.search(name)
    return int(found.group(1)) if found is not None and found.end() == len(name) else -1


class Consumers:
    """The consumers of one collector's prefix on one JetStream connection."""

    def __init__(self, js: JetStreamContext, config: NatsConfig, prefix: str, partitions: int) -> None:
        self.js = js
        self._config = config
        self._prefix = prefix
        self._partitions = partitions

    def subject(self, partition: int) -> str:
        return f"{SUBJECT_PREFIX}{self._prefix.replace('/', '.')}.{partition}.>"

    async def wait_for_stream(
        self, stopping: threading.Event, make_streams: Callable[[], None] | None
    ) -> None:
        """Until the stream exists (NATS makes it at the first MQTT connection: ``make_streams``)."""
        from nats.js.errors import NotFoundError

        waiting = False
        while not stopping.is_set():
            try:
                await self.js.stream_info(STREAM)
            except NotFoundError:
                if not waiting:
                    waiting = True
                    log.warning("NATS has no %s stream yet (made at the first MQTT connection)", STREAM)
                    if make_streams is not None:
                        await asyncio.get_running_loop().run_in_executor(None, make_streams)
                await asyncio.sleep(1)
            else:
                return

    async def ensure(self) -> list[str]:
        """A consumer (``-g0``, from the stream's first message) for every partition that has none; the names
        of those made.

        NATS makes ``$MQTT_msgs`` with interest retention: a message that no consumer's filter matches when it
        arrives is dropped at once (the stream's last seq moves on, nothing is kept), and the retention of a
        stream cannot be changed afterwards. A partition that gets its first consumer only now has lost what
        agents published to it before, which is said once here.
        """
        infos = await self.js.consumers_info(STREAM)
        self._check_count(infos)
        names = {info.name for info in infos}
        made: list[str] = []
        for number in range(self._partitions):
            base = f"{self._config.consumer}-p{number}-g"
            if not any(name.startswith(base) for name in names):
                name = consumer_name(self._config.consumer, number, 0)
                await self._add(name, number, None)
                made.append(name)
        if made:
            taken = (await self.js.stream_info(STREAM)).state.last_seq
            if taken:
                log.warning(
                    "made consumers %s after NATS had taken %d messages: what agents published to those"
                    " partitions before now was not kept (run hezo-collector cluster nats-setup before"
                    " the first agent connects; docs/cluster.md)",
                    ", ".join(made),
                    taken,
                )
        return made

    def _check_count(self, infos: list[ConsumerInfo]) -> None:
        """Refuse this collector's ``cluster.partitions`` when a consumer on NATS was made for another number
        of partitions: each says its number in its description (one made before descriptions said it
        betrays a larger number by its own partition's)."""
        ours = re.compile(re.escape(self._config.consumer) + r"-p([0-9]+)-g[0-9]+(?:-r[0-9a-f]+)?")
        for info in infos:
            found = ours.fullmatch(info.name)
            if found is None:
                continue
            said = _COUNT.fullmatch(info.config.description or "")
            if said is not None and int(said.group(1)) != self._partitions:
                recorded = f"made for {said.group(1)} partitions"
            elif said is None and int(found.group(1)) >= self._partitions:
                recorded = f"made for at least {int(found.group(1)) + 1} partitions"
            else:
                continue
            raise PartitionCountError(
                f"cluster.partitions is {self._partitions}, but the consumer {info.name} on NATS was"
                f" {recorded}: the collectors, their consumers and the NATS nodes' mapping must all use one"
                ' number; to change it, follow "Changing the number of partitions" in docs/cluster.md'
            )

    async def take_over(self, partition: int, generation: int, after: int | None = None) -> str:
        """A consumer of its own for this generation, and the partition's earlier ones deleted once it exists.

        It starts right after ``after`` (the last stream seq this collector has in hand, when it reads the
        partition again after losing deliveries) or else after the acknowledged floor of the newest consumer
        before it (whose holder acknowledged only what it had stored). A fresh consumer numbers its deliveries
        from 1, which lets the reader see a delivery lost on the way.
        """
        before = await self._before(partition, generation)
        start = None if after is None else after + 1
        if start is None and before:
            newest = max(before, key=lambda info: (generation_of(info.name), _floor(info)))
            start = _floor(newest) + 1
        name = consumer_name(self._config.consumer, partition, generation, secrets.token_hex(3))
        await self._add(name, partition, start)
        for info in before:
            await self.js.delete_consumer(STREAM, info.name)
        log.info("reading partition %d through %s (from stream seq %s)", partition, name, start or "first")
        return name

    async def sweep(self, partition: int, generation: int, current: str) -> None:
        """Delete the partition's consumers before ``current`` that a collector starting late made again (they
        would keep the stream's messages for nobody)."""
        for info in await self._before(partition, generation):
            if info.name != current:
                await self.js.delete_consumer(STREAM, info.name)
                log.info("deleted the stale consumer %s of partition %d", info.name, partition)

    async def _before(self, partition: int, generation: int) -> list[ConsumerInfo]:
        """The consumers of ``partition`` of this generation or an earlier one."""
        base = f"{self._config.consumer}-p{partition}-g"
        return [
            info
            for info in await self.js.consumers_info(STREAM)
            if info.name.startswith(base) and 0 <= generation_of(info.name) <= generation
        ]

    async def _add(self, name: str, partition: int, start: int | None) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        await self.js.add_consumer(
            STREAM,
            ConsumerConfig(
                durable_name=name,
                filter_subject=self.subject(partition),
                description=f"hezo partition {partition} of {self._partitions}",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self._config.ack_wait,
                max_ack_pending=self._config.max_ack_pending,
                deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
            ),
        )


def _floor(info: ConsumerInfo) -> int:
    """The last stream seq a consumer has acknowledged all messages up to (its start, before any ack)."""
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    return max(floor, (info.config.opt_start_seq or 1) - 1)


def guard_subjects(prefix: str, partitions: int) -> list[str]:
    """Core NATS subjects no message reaches when the nodes' mapping is the one for ``partitions``: the
    partitions past it, N to 2N-1 (a mapping for a multiple of N uses them), and the agents' subjects before
    the mapping (which carry them when the nodes have none). No consumer reads such a message: NATS drops it
    (``unguarded``)."""
    dotted = prefix.replace("/", ".")
    past = [f"{dotted}.{number}.>" for number in range(partitions, min(2 * partitions, MAX_PARTITIONS))]
    return [*past, *subject_mappings(prefix, partitions)]


def unguarded(subject: str, prefix: str, partitions: int) -> str | None:
    """What is wrong when a message reached a ``guard_subjects`` subject; None when it is no agent's message
    after all (a command to a site whose id is a number, say)."""
    depth = len(prefix.split("/"))
    tokens = subject.split(".")
    sources = [source.split(".") for source in subject_mappings(prefix, partitions)]
    token = tokens[depth] if len(tokens) > depth else ""
    if (
        token.isdigit()
        and int(token) >= partitions
        and _shaped(tokens[:depth] + tokens[depth + 1 :], sources)
    ):
        why = (
            f"the NATS nodes' mapping put a message ({subject}) in partition {token}, past cluster.partitions"
            f" ({partitions}): their mappings block is for more partitions"
        )
    elif _shaped(tokens, sources):
        why = (
            f"a message ({subject}) reached NATS without a partition after the prefix: the nodes have no"
            " mapping"
        )
    else:
        return None
    return (
        f"{why}, and no consumer reads such messages, so NATS drops them; put the block hezo-collector"
        " cluster nats-mappings prints for this config in every node's config (docs/cluster.md)"
    )


async def guard(
    client: Nats, prefix: str, partitions: int, refuse: Callable[[PartitionCountError], None]
) -> None:
    """Listen where no message comes with the right mapping (``guard_subjects``): one that does means sites
    whose messages no consumer reads, and NATS drops; ``refuse`` hears what is wrong."""

    async def seen(msg: Msg) -> None:
        wrong = unguarded(msg.subject, prefix, partitions)
        if wrong is not None:
            refuse(PartitionCountError(wrong))

    for subject in guard_subjects(prefix, partitions):
        await client.subscribe(subject, cb=seen)


def _shaped(tokens: list[str], patterns: list[list[str]]) -> bool:
    """Whether the subject ``tokens`` match one of ``patterns`` (``*`` matching any one token)."""
    return any(
        len(tokens) == len(pattern) and all(p in {"*", t} for p, t in zip(pattern, tokens, strict=True))
        for pattern in patterns
    )


def misplaced(subject: str, prefix: str, partitions: int) -> str | None:
    """What is wrong when NATS's mapping put the site of ``subject`` in another partition than
    ``partitions`` would (the nodes' mapping is for another count); None when it agrees."""
    tokens = subject.removeprefix(SUBJECT_PREFIX).split(".")
    count = len(prefix.split("/"))
    if len(tokens) <= count + 1 or not tokens[count].isdigit():
        return None  # not a mapped subject: the pipeline rejects and keeps it
    mapped, site = int(tokens[count]), tokens[count + 1]
    ours = partition_of(site, partitions)
    if mapped == ours:
        return None
    return (
        f"cluster.partitions is {partitions}, which puts site {site} in partition {ours}, but the NATS"
        f" nodes' mapping put it in partition {mapped}: their mappings block is for another number of"
        " partitions (hezo-collector cluster nats-mappings prints the one for this config); to change it,"
        ' follow "Changing the number of partitions" in docs/cluster.md'
    )
