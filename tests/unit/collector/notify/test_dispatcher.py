"""Ticket events reach their sinks through the outbox: routed by rules, in order per ticket, retried with
backoff, dead-lettered with the reason, and sent again on request."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from collector import tickets
from collector.config import CollectorConfig
from collector.errors import NotFoundError
from collector.notify import outbox
from collector.notify.dispatcher import Dispatcher
from collector.sinks.base import Delivered, DeskChange, Failed, Link, Notice, Outcome, Retry
from collector.sla.terms import SlaContext
from collector.store.schema import contracts, deliveries
from collector.store.schema import outbox as outbox_table
from tests.support.collector import T0, Clock


class Recorder:
    """A sink that answers from a script (``Delivered`` when the script runs out) and keeps every notice."""

    def __init__(self, *answers: Outcome) -> None:
        self.answers = list(answers)
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> Outcome:
        self.notices.append(notice)
        return self.answers.pop(0) if self.answers else Delivered(remote_ref=f"ref-{len(self.notices)}")

    def close(self) -> None:
        """Nothing to release."""

    @property
    def events(self) -> list[tuple[str, str]]:
        return [(notice.number, notice.event) for notice in self.notices]


def config(routes: list[dict[str, Any]], sinks: tuple[str, ...] = ("desk",), **extra: Any) -> CollectorConfig:
    hooks = {name: {"type": "webhook", "url": f"http://127.0.0.1:9/{name}"} for name in sinks}
    return CollectorConfig.model_validate({"notify": {"sinks": hooks, "routes": routes, **extra}})


def dispatcher(engine: Engine, settings: CollectorConfig, clock: Clock, **sinks: Recorder) -> Dispatcher:
    return Dispatcher(engine, settings, SlaContext.from_config(settings), sinks=dict(sinks), now=clock)


def open_ticket(
    engine: Engine, priority: str = "critical", *, device: str = "rally-bar", at: datetime = T0
) -> str:
    with engine.begin() as conn:
        return tickets.open_ticket(
            conn,
            tickets.Subject("hq", "room-1", device, "rally-bar", "2034FH1002R2", "HZ-C-1"),
            priority=priority,
            cause="device-down",
            opened_at=at,
            response_due=at + timedelta(hours=1),
            evidence=None,
            text=f"{device} is down",
        )


def add(engine: Engine, number: str, kind: str, at: datetime) -> None:
    with engine.begin() as conn:
        ticket_id = conn.execute(select(tickets_table_id(number))).scalar_one()
        tickets.add_entry(conn, ticket_id, at, kind, f"{kind} of {number}")


def tickets_table_id(number: str) -> Any:
    from collector.store.schema import tickets as table

    return select(table.c.id).where(table.c.number == number).scalar_subquery()


def drain(notify: Dispatcher, sink: str = "desk") -> None:
    notify.route()
    while notify.deliver(sink):
        pass


def statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row.status for row in conn.execute(select(deliveries).order_by(deliveries.c.id))]


def test_every_timeline_entry_is_in_the_outbox_with_the_ticket_change(engine: Engine) -> None:
    number = open_ticket(engine)
    add(engine, number, "down-again", T0 + timedelta(minutes=5))
    with engine.connect() as conn:
        events = list(conn.execute(select(outbox_table.c.event).order_by(outbox_table.c.id)).scalars())
    assert events == ["opened", "reopened"]


def test_a_ticket_that_is_rolled_back_leaves_nothing_in_the_outbox(engine: Engine) -> None:
    def open_then_fail() -> None:
        with engine.begin() as conn:
            tickets.open_ticket(
                conn,
                tickets.Subject("hq"),
                priority="high",
                cause="agent-silent",
                opened_at=T0,
                response_due=T0,
                evidence=None,
                text="silent",
            )
            raise RuntimeError("the transaction fails after the ticket was written")

    with pytest.raises(RuntimeError):
        open_then_fail()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_table)).scalar_one() == 0


def test_routes_choose_sinks_by_event_and_priority(engine: Engine) -> None:
    settings = config(
        [
            {"sinks": ["oncall"], "priorities": ["critical"], "events": ["opened", "reopened"]},
            {"sinks": ["desk"]},
        ],
        sinks=("oncall", "desk"),
    )
    oncall, desk = Recorder(), Recorder()
    notify = dispatcher(engine, settings, Clock(T0), oncall=oncall, desk=desk)
    critical = open_ticket(engine, "critical")
    high = open_ticket(engine, "high", device="tap")
    add(engine, critical, "respond", T0 + timedelta(minutes=1))
    drain(notify, "oncall")
    drain(notify, "desk")
    assert oncall.events == [(critical, "opened")]
    assert desk.events == [(critical, "opened"), (high, "opened"), (critical, "respond")]


def test_a_notice_carries_the_ticket_its_customer_and_a_key_that_stays_the_same(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(contracts).values(number="HZ-C-1", start=T0.date(), years=3, customer="ACME", source="api")
        )
    desk = Recorder(Retry("busy"))
    clock = Clock(T0)
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), clock, desk=desk)
    number = open_ticket(engine)
    drain(notify)
    clock.advance(3600)
    drain(notify)
    first, second = desk.notices
    assert first.key == second.key
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.ticket["serial"] == "2034FH1002R2"
    assert first.ticket["customer"] == "ACME"
    assert first.url.endswith(f"/api/tickets/{number}")
    assert first.timezone == "Europe/Warsaw"


def test_a_ticket_events_reach_a_sink_in_order_while_an_earlier_one_is_retried(engine: Engine) -> None:
    clock = Clock(T0)
    desk = Recorder(Retry("down for now"))
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), clock, desk=desk)
    number = open_ticket(engine)
    add(engine, number, "respond", T0 + timedelta(seconds=1))
    other = open_ticket(engine, device="tap")
    drain(notify)
    # The first ticket's opening failed for now: its response waits; the other ticket goes on.
    assert desk.events == [(number, "opened"), (other, "opened")]
    clock.advance(3600)
    drain(notify)
    assert desk.events[2:] == [(number, "opened"), (number, "respond")]


def test_retries_wait_longer_each_time_within_their_bounds(engine: Engine) -> None:
    policy = CollectorConfig().notify.retry
    delays = [outbox.backoff(attempt, policy) for attempt in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(policy.max_delay, policy.first_delay * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= policy.max_delay


def test_a_refusal_is_dead_at_once_with_its_reason_and_the_rest_keeps_flowing(engine: Engine) -> None:
    desk = Recorder(Failed("HTTP 400: bad request"))
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), Clock(T0), desk=desk)
    open_ticket(engine)
    open_ticket(engine, device="tap")
    drain(notify)
    assert statuses(engine) == ["dead", "sent"]
    with engine.connect() as conn:
        [dead] = outbox.list_deliveries(conn, status="dead")
    assert dead["last_error"] == "HTTP 400: bad request"


def test_temporary_failures_end_in_dead_letter_after_the_last_attempt(engine: Engine) -> None:
    clock = Clock(T0)
    settings = config([{"sinks": ["desk"]}], retry={"attempts": 3, "first_delay": 1, "max_delay": 2})
    desk = Recorder(*[Retry("connection refused")] * 3)
    notify = dispatcher(engine, settings, clock, desk=desk)
    open_ticket(engine)
    for _ in range(3):
        drain(notify)
        clock.advance(10)
    assert len(desk.notices) == 3
    with engine.connect() as conn:
        [dead] = outbox.list_deliveries(conn, status="dead")
    assert dead["last_error"] == "gave up after 3 attempts: connection refused"


def test_a_dead_delivery_is_sent_again_on_request(engine: Engine) -> None:
    desk = Recorder(Failed("HTTP 401: bad token"))
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), Clock(T0), desk=desk)
    open_ticket(engine)
    drain(notify)
    with engine.begin() as conn:
        [dead] = outbox.list_deliveries(conn, status="dead")
        with pytest.raises(NotFoundError, match="no dead delivery numbered 999"):
            outbox.retry(conn, T0, [999])
        assert outbox.retry(conn, T0, [dead["id"]]) == 1
    drain(notify)
    assert statuses(engine) == ["sent"]
    assert len(desk.notices) == 2


def test_a_working_hours_route_holds_a_notice_until_the_site_opens(engine: Engine) -> None:
    saturday_night = datetime.fromisoformat("2026-12-05T22:00:00+01:00")  # Warsaw; opens Monday 08:00
    clock = Clock(saturday_night)
    desk = Recorder()
    notify = dispatcher(engine, config([{"sinks": ["desk"], "hours": "working"}]), clock, desk=desk)
    open_ticket(engine, "high", at=saturday_night)
    drain(notify)
    assert desk.notices == []
    clock.advance((datetime.fromisoformat("2026-12-07T08:00:00+01:00") - saturday_night).total_seconds())
    drain(notify)
    assert len(desk.notices) == 1


def test_a_link_made_by_one_delivery_is_handed_to_the_next(engine: Engine) -> None:
    desk = Recorder(Delivered("1", Link("1", "http://rt/Ticket/Display.html?id=1")))
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), Clock(T0), desk=desk)
    number = open_ticket(engine)
    add(engine, number, "respond", T0 + timedelta(minutes=1))
    drain(notify)
    first, second = desk.notices
    assert first.link is None
    assert second.link == Link("1", "http://rt/Ticket/Display.html?id=1")


def test_customer_routes_go_to_the_contract_contact_and_only_where_there_is_one(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(contracts).values(
                number="HZ-C-1", start=T0.date(), years=3, contact="it@customer.example", source="api"
            )
        )
    mail = Recorder()
    settings = CollectorConfig.model_validate(
        {
            "notify": {
                "sinks": {
                    "mail": {"type": "email", "host": "smtp", "from": "hezo@x.example", "to": ["a@x.example"]}
                },
                "routes": [{"sinks": ["mail"], "to_contact": True}],
            }
        }
    )
    notify = dispatcher(engine, settings, Clock(T0), mail=mail)
    open_ticket(engine)
    with engine.begin() as conn:
        tickets.open_ticket(
            conn,
            tickets.Subject("hq"),
            priority="high",
            cause="agent-silent",
            opened_at=T0,
            response_due=T0,
            evidence=None,
            text="no contract here",
        )
    drain(notify, "mail")
    assert [notice.recipient for notice in mail.notices] == ["it@customer.example"]


def test_a_sink_that_raises_is_dead_lettered_not_fatal(engine: Engine) -> None:
    class Broken(Recorder):
        def send(self, notice: Notice) -> Outcome:
            raise KeyError("a bug in the sink")

    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), Clock(T0), desk=Broken())
    open_ticket(engine)
    drain(notify)
    with engine.connect() as conn:
        [dead] = outbox.list_deliveries(conn, status="dead")
    assert "KeyError" in dead["last_error"]


class FakeDesk(Recorder):
    """A desk: links each ticket on its first notice, then reports what the test scripts for it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, DeskChange | Retry] = {}
        self.asked: list[Link] = []

    def send(self, notice: Notice) -> Outcome:
        self.notices.append(notice)
        if notice.link is None:
            return Delivered("1", Link(f"RT-{notice.number}", f"http://desk/{notice.number}", "0"))
        return Delivered()

    def changes(self, link: Link) -> DeskChange | Retry:
        self.asked.append(link)
        return self.pending.pop(link.remote_id, DeskChange(cursor=link.cursor))


def entries(engine: Engine, number: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        found = tickets.get_ticket(conn, number)
    assert found is not None
    return [(entry["kind"], entry["by"], entry["text"]) for entry in found["entries"]]


def test_comments_and_a_resolution_at_the_desk_come_back_and_are_not_echoed(engine: Engine) -> None:
    desk = FakeDesk()
    clock = Clock(T0)
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), clock, desk=desk)
    number = open_ticket(engine, "high")
    drain(notify)
    desk.pending[f"RT-{number}"] = DeskChange(
        comments=[("alice", "Called the site: the bar is unplugged.")], resolved_by="alice", cursor="7"
    )
    clock.advance(60)
    assert notify.follower.follow() == 2
    assert entries(engine, number)[1:] == [
        ("note", "alice via desk", "Called the site: the bar is unplugged."),
        ("resolve", "alice via desk", f"Resolved in desk (RT-{number}) by alice."),
    ]
    drain(notify)
    # The resolution is news to other sinks, not to the desk it came from.
    assert desk.events == [(number, "opened")]
    notify.follower.follow()
    assert desk.asked[-1].cursor == "7"


def test_a_desk_away_is_asked_again_next_round(engine: Engine) -> None:
    desk = FakeDesk()
    notify = dispatcher(engine, config([{"sinks": ["desk"]}]), Clock(T0), desk=desk)
    number = open_ticket(engine)
    drain(notify)
    desk.pending[f"RT-{number}"] = Retry("HTTP 503")
    assert notify.follower.follow() == 0
    desk.pending[f"RT-{number}"] = DeskChange(comments=[("bob", "on it")], cursor="2")
    assert notify.follower.follow() == 1


def test_customer_updates_are_written_before_the_update_deadline_and_reset_it(engine: Engine) -> None:
    settings = config(
        [{"sinks": ["desk"], "events": ["update"]}],
        customer_updates={"enabled": True, "lead_minutes": 10},
    )
    settings.sites["hq"] = settings.default_site.model_copy(update={"contact": "it@customer.example"})
    clock = Clock(T0)
    desk = Recorder()
    notify = dispatcher(engine, settings, clock, desk=desk)
    number = open_ticket(engine)
    with engine.begin() as conn:
        tickets.step(conn, number, "respond", by="eve", now=T0, context=SlaContext.from_config(settings))
    assert notify.updates.run() == []  # the next update is due in an hour (Critical): not yet
    clock.advance(50 * 60)
    assert notify.updates.run() == [number]
    assert notify.updates.run() == []  # the update reset the clock
    drain(notify)
    [update] = desk.notices
    assert update.event == "update"
    assert "An engineer is working on it." in update.entry["text"]
    assert "Next update by 2026-" in update.entry["text"]
