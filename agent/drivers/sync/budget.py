"""The Sync Cloud API's request budget: at most 1 request/s sustained and 14,400 requests a day per account.

A token bucket spaces the requests (``rate`` per second, ``burst`` at once) and a counter per UTC day stops
them at the daily cap. Both clocks are injectable so unit tests can run days in microseconds. The budget also
says how often the agent may fetch the whole place list: ``pages`` pages every ``interval`` seconds cost
``pages * 86400 / interval`` requests a day, so the interval is raised until that fits under the cap.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import AgentError

DAY_S = 86400.0


class BudgetExhaustedError(AgentError):
    """The daily cap is reached: no request may go before the next UTC day."""


@dataclass(frozen=True)
class Grant:
    """Permission for one request, once ``wait`` seconds have passed."""

    wait: float


class RequestBudget:
    """Token bucket plus daily counter, shared by every request of one Sync account (thread-safe).

    ``monotonic`` measures spacing; ``wall`` (seconds since the epoch, UTC) says which day it is.
    """

    def __init__(
        self,
        rate: float = 1.0,
        burst: int = 1,
        daily: int = 14_400,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if rate <= 0 or burst < 1 or daily < 1:
            raise ValueError("rate must be > 0, burst and daily at least 1")
        self.rate = rate
        self.burst = burst
        self.daily = daily
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._refilled = monotonic()
        self._day = self._today()
        self._used_today = 0

    def _today(self) -> int:
        return int(self._wall() // DAY_S)

    @property
    def used_today(self) -> int:
        with self._lock:
            self._roll_day()
            return self._used_today

    def seconds_to_next_day(self) -> float:
        now = self._wall()
        return (math.floor(now / DAY_S) + 1) * DAY_S - now

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self._used_today = 0

    def reserve(self) -> Grant:
        """Count one request and say how long to wait before sending it.

        Raises ``BudgetExhaustedError`` when today's cap is used up; nothing is counted then.
        """
        with self._lock:
            self._roll_day()
            if self._used_today >= self.daily:
                raise BudgetExhaustedError(
                    f"the daily budget of {self.daily} requests is used up; "
                    f"it renews in {self.seconds_to_next_day() / 60:.0f} min (midnight UTC)"
                )
            now = self._monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            # Take the token now, even if it is not there yet: the debt is the wait, and the next caller
            # queues behind it, so concurrent callers never share one token.
            self._tokens -= 1.0
            self._used_today += 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            return Grant(wait)

    def fetch_interval(self, interval: float, pages: int) -> float:
        """The shortest interval between fetches of ``pages`` pages that stays within the budget.

        At most ``daily`` requests a day, and the pages of one fetch must fit in the interval at ``rate``.
        """
        pages = max(1, pages)
        return max(interval, pages * DAY_S / self.daily, pages / self.rate)
