"""Benchmark: time to pull a 50 MB log bundle into the collector, next to a plain ``curl`` upload of the same
file to the same server in the same run.

    python -m tests.bench.bench_upload [--mb 50] [--runs 3]

The collector's web server (uvicorn, the real upload route with its sha256 check and bundle inspection)
runs in a child process on a loopback port. "hezo" is ``diagnostics.upload.upload`` as the agent runs it
(sha256 of the file, HEAD for the offset, PATCH); "curl" sends the same file in one PATCH with the same
headers (its sha256 is computed beforehand and not timed). Each upload gets a fresh command and token.
Target: hezo <= 2x curl.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from collector.config import CollectorConfig
from collector.remote.commander import Commander
from collector.remote.keys import keygen
from collector.store.database import make_engine, migrate
from collector.store.schema import agents, devices
from diagnostics.bundle import BundleBuilder, file_sha256
from diagnostics.upload import upload
from protocol.commands import decode_signed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(workdir: Path, port: int) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "store": {"url": f"sqlite:///{workdir / 'collector.db'}"},
            "web": {"host": "127.0.0.1", "port": port},
            "diagnostics": {
                "key_file": str(workdir / "collector.key"),
                "bundle_dir": str(workdir / "bundles"),
            },
        }
    )


def serve(workdir: Path, port: int) -> None:
    """The child: the collector's web app over the bench's store, no broker."""
    import logging

    import uvicorn

    from collector.api.app import create_app

    config = _config(workdir, port)
    engine = make_engine(config.store.url)
    commander = Commander(engine, config, publish=lambda _topic, _payload: None)
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(create_app(engine, diagnostics=commander), host="127.0.0.1", port=port, log_level="warning")


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the collector did not listen on {port}")


def _make_bundle(path: Path, megabytes: int) -> None:
    size = megabytes * 1024 * 1024
    builder = BundleBuilder({"bench": True}, max_file_bytes=size, max_total_bytes=size * 2)
    # Random bytes do not compress: the bundle is as large as asked. Built once, outside the timing.
    builder.add_bytes("app/0-logs/capture.bin", os.urandom(size - 4096), source="bench")
    builder.write(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=50, help="bundle size in MiB (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="uploads of each kind (default 3)")
    parser.add_argument("--serve", nargs=2, metavar=("WORKDIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="hezo-bench-upload-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        keygen(workdir / "collector.key")
        config = _config(workdir, port)
        engine = make_engine(config.store.url)
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(insert(agents).values(site="bench", agent="room-1", online=True))
            conn.execute(insert(devices).values(site="bench", agent="room-1", device="rally-bar", state="up"))
        sent: list[bytes] = []
        commander = Commander(engine, config, publish=lambda _topic, payload: sent.append(payload))
        bundle = workdir / "bundle.tar.gz"
        _make_bundle(bundle, args.mb)
        digest = file_sha256(bundle)
        size = bundle.stat().st_size
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_upload", "--serve", str(workdir), str(port)],
        )
        try:
            _wait_port(port)

            def new_upload() -> tuple[str, str]:
                commander.request("bench", "room-1", "collect-logs", device="rally-bar", requested_by="bench")
                command = decode_signed(sent[-1])[0]
                return command.args["upload_url"], command.args["upload_token"]

            hezo: list[float] = []
            curl: list[float] = []
            for _ in range(args.runs):
                url, token = new_upload()
                started = time.perf_counter()
                answer = upload(bundle, url, token, timeout=120)
                hezo.append(time.perf_counter() - started)
                assert answer["sha256"] == digest, answer
                url, token = new_upload()
                argv = [
                    "curl",
                    "--silent",
                    "--show-error",
                    "--fail",
                    "--output",
                    "/dev/null",
                    "--request",
                    "PATCH",
                    "--header",
                    f"Authorization: Bearer {token}",
                    "--header",
                    "Upload-Offset: 0",
                    "--header",
                    f"Upload-Length: {size}",
                    "--header",
                    f"Upload-Sha256: {digest}",
                    "--header",
                    "Content-Type: application/offset+octet-stream",
                    "--header",
                    "Expect:",
                    "--data-binary",
                    f"@{bundle}",
                    url,
                ]
                started = time.perf_counter()
                subprocess.run(argv, check=True)
                curl.append(time.perf_counter() - started)
        finally:
            child.terminate()
            child.wait(timeout=30)
            engine.dispose()
    mib = size / 1024 / 1024
    hezo_s, curl_s = statistics.median(hezo), statistics.median(curl)
    print(f"bundle: {mib:.1f} MiB (sha256 checked, bundle inspected by the collector), {args.runs} runs each")
    print(f"{'upload':<28}{'median s':>10}{'min s':>10}{'MiB/s':>10}")
    print(f"{'hezo (diagnostics.upload)':<28}{hezo_s:>10.3f}{min(hezo):>10.3f}{mib / hezo_s:>10.1f}")
    print(f"{'curl PATCH (reference)':<28}{curl_s:>10.3f}{min(curl):>10.3f}{mib / curl_s:>10.1f}")
    ratio = hezo_s / curl_s
    print(f"ratio hezo / curl: {ratio:.2f} (target <= 2.00): {'OK' if ratio <= 2.0 else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
