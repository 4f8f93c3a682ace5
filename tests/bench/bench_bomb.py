"""A bundle bomb against the collector's bundle checks: a small tar.gz whose one member unpacks to 1 GiB.

Run: python -m tests.bench.bench_bomb [--gib 1]

Each measurement runs in a fresh Python process and prints its peak memory (ru_maxrss) beside the same
process's baseline: the collector's check of a received bundle (``inspect_bundle`` with the default limits)
and its view of one member (``read_member`` with the default limit), against reading the member whole (what
the member view did before it had a limit), the reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests.support.bombs import MEMBER, bomb


def measure(what: str, path: Path) -> None:
    """In this (fresh) process: do ``what`` to the bomb and print a JSON line of figures."""
    from diagnostics.bundle import BundleError, inspect_bundle, read_member

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome = "accepted"
    try:
        if what == "inspect":
            inspect_bundle(path)
        elif what == "view":
            read_member(path, MEMBER)
        else:
            with tarfile.open(path, mode="r:gz") as tar:
                handle = tar.extractfile(MEMBER)
                assert handle is not None
                handle.read()
    except BundleError as exc:
        outcome = f"refused: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = time.perf_counter() - started
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "seconds": seconds, "outcome": outcome}))


def run(what: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_bomb", "--measure", what, "--path", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--measure", choices=("inspect", "view", "whole"))
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.tar.gz"
        size = int(args.gib * 1024**3)
        bomb(path, size)
        print(f"bomb: {path.stat().st_size} bytes on the wire, one member of {size} bytes unpacked")
        print(f"{'':34} {'baseline MiB':>12} {'peak MiB':>9} {'grew MiB':>9} {'s':>6}  outcome")
        for label, what in (
            ("reading the member whole (ref.)", "whole"),
            ("check of a received bundle", "inspect"),
            ("the member shown on the page", "view"),
        ):
            figures = run(what, path)
            base = int(figures["baseline_kib"]) / 1024  # type: ignore[call-overload]
            peak = int(figures["peak_kib"]) / 1024  # type: ignore[call-overload]
            print(
                f"{label:34} {base:12.0f} {peak:9.0f} {peak - base:9.0f} {float(figures['seconds']):6.2f}"  # type: ignore[arg-type]
                f"  {str(figures['outcome'])[:90]}"
            )


if __name__ == "__main__":
    main()
