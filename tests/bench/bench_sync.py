"""What one round of 40 sync checks costs against the fake Sync Cloud API with the real throttle and budget.

Run: ``python -m tests.bench.bench_sync``. Loopback only; about 10 s. The reference is page size 1000 (one
request per round); the ratio says how many times its requests a smaller page size costs.
"""

import asyncio
import tempfile
import time
from pathlib import Path

from agent.drivers.base import CheckResult
from agent.drivers.sync import SyncAccountConfig, SyncProbe
from agent.drivers.sync.client import SyncClient
from simulator.syncapi import FakeDevice, FakePlace, SyncCloudApi

DEVICES = 40
INTERVAL = 60.0


def one_round(api: SyncCloudApi, page_size: int) -> tuple[int, int, float, float]:
    account = SyncAccountConfig.model_validate({**api.account(), "page_size": page_size})
    client = SyncClient(account, INTERVAL)  # the real budget: 1 request/s, 14,400 a day
    probes = [SyncProbe(client, serial=f"S{n:05d}", device_id=None) for n in range(DEVICES)]

    async def poll_all() -> list[CheckResult]:
        return list(await asyncio.gather(*(probe.poll() for probe in probes)))

    before = len(api.statuses())
    started = time.perf_counter()
    results = asyncio.run(poll_all())
    took = time.perf_counter() - started
    client.close()
    return sum(r.ok for r in results), len(api.statuses()) - before, took, client.fetch_interval()


def main() -> None:
    places = [
        FakePlace(
            f"p{n}", "Room", f"Room {n}", [FakeDevice(f"d{n}", "Logitech", "Rally Bar", "1.0", f"S{n:05d}")]
        )
        for n in range(DEVICES)
    ]
    with tempfile.TemporaryDirectory() as state:
        api = SyncCloudApi(Path(state), places)  # the real API's throttle: 1 request/s, 10 at once
        api.power_on()
        try:
            rows = [(size, *one_round(api, size)) for size in (1000, 20, 10)]
        finally:
            api.power_off()
    reference = rows[0][2]
    print(f"{DEVICES} devices polled once, fetch interval {INTERVAL:g} s")
    header = ("page size", "up", "requests", "round s", "interval s", "req/day", "ratio")
    print(" ".join(f"{h:>10}" for h in header))
    for size, up, sent, took, interval in rows:
        per_day = sent * 86400 / interval
        cells = (
            f"{size}",
            f"{up}",
            f"{sent}",
            f"{took:.2f}",
            f"{interval:g}",
            f"{per_day:.0f}",
            f"{sent / reference:.1f}",
        )
        print(" ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
