"""The Sync request budget: 1 request/s sustained and the daily cap, on a fake clock."""

import itertools

import pytest

from agent.drivers.sync.budget import DAY_S, BudgetExhaustedError, RequestBudget


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def send_times(budget: RequestBudget, clock: FakeClock, count: int) -> list[float]:
    """When each of ``count`` requests goes out if the caller waits as told."""
    sent = []
    for _ in range(count):
        clock.sleep(budget.reserve().wait)
        sent.append(clock.now)
    return sent


def test_back_to_back_requests_are_spaced_one_second_apart() -> None:
    clock = FakeClock()
    budget = RequestBudget(rate=1.0, burst=1, monotonic=clock, wall=clock)
    sent = send_times(budget, clock, 50)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(1.0)


def test_no_window_of_one_second_holds_more_than_the_burst() -> None:
    clock = FakeClock()
    budget = RequestBudget(rate=1.0, burst=3, monotonic=clock, wall=clock)
    sent = send_times(budget, clock, 30)
    for start in sent:
        # the burst may go at once; after it, no more than the rate allows in any 10 s
        assert sum(1 for t in sent if start <= t < start + 10.0) <= 3 + 10


def test_concurrent_callers_queue_behind_each_other() -> None:
    clock = FakeClock()
    budget = RequestBudget(rate=1.0, burst=1, monotonic=clock, wall=clock)
    waits = [budget.reserve().wait for _ in range(4)]  # four threads asking at the same instant
    assert waits == [0.0, 1.0, 2.0, 3.0]


def test_the_daily_cap_stops_requests_until_the_next_utc_day() -> None:
    clock = FakeClock(start=19_000 * DAY_S)  # midnight UTC
    budget = RequestBudget(rate=1.0, burst=1, daily=100, monotonic=clock, wall=clock)
    send_times(budget, clock, 100)
    with pytest.raises(BudgetExhaustedError, match="daily budget of 100 requests is used up"):
        budget.reserve()
    assert budget.used_today == 100
    clock.now = 19_001 * DAY_S  # the next day
    assert budget.reserve().wait == 0.0
    assert budget.used_today == 1


def test_a_full_day_at_the_sustained_rate_never_passes_14400() -> None:
    clock = FakeClock(start=19_000 * DAY_S)
    budget = RequestBudget(monotonic=clock, wall=clock)
    sent = 0
    while clock.now < 19_000 * DAY_S + DAY_S - 1:
        try:
            clock.sleep(budget.reserve().wait)
        except BudgetExhaustedError:
            break
        sent += 1
    assert sent == 14_400


def test_the_fetch_interval_is_the_poll_interval_when_it_fits() -> None:
    budget = RequestBudget()
    assert budget.fetch_interval(60.0, pages=1) == 60.0  # 1,440 requests a day


def test_the_fetch_interval_is_raised_to_stay_within_the_daily_cap() -> None:
    budget = RequestBudget()
    assert budget.fetch_interval(5.0, pages=1) == 6.0  # 86400 / 6 = 14,400 a day
    assert budget.fetch_interval(30.0, pages=10) == 60.0  # 10 pages a minute = 14,400 a day


def test_the_fetch_interval_leaves_time_for_every_page_at_the_rate() -> None:
    budget = RequestBudget(rate=1.0, daily=10**9)
    assert budget.fetch_interval(1.0, pages=5) == 5.0
