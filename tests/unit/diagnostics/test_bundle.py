"""Bundles carry no secrets, stay inside their folder, say what they cut, and are checked on arrival."""

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from diagnostics.bundle import (
    BundleBuilder,
    BundleError,
    Limits,
    MemberTooLargeError,
    inspect_bundle,
    read_member,
)
from diagnostics.redact import Redactor
from tests.support.bombs import bomb as make_bomb

SECRETS = {
    "password": "hunter2-Pa55",
    "token": "tok_9f8e7d6c5b4a",
    "api_key": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "pem": "MC4CAQAwBQYDK2VwBCIEIJ+secretkeymaterial+abcdefghijklmnopq",
    "url": "s3cr3t-in-url",
    "custom": "CUST-778899",
}

PLANTED = f"""2026-11-24 21:00:01 INFO login ok password={SECRETS["password"]}
2026-11-24 21:00:02 DEBUG config {{"token": "{SECRETS["token"]}", "user": "room"}}
api_key: {SECRETS["api_key"]}
Authorization: Bearer {SECRETS["bearer"]}
GET https://admin:{SECRETS["url"]}@192.0.2.10/api
customer ref {SECRETS["custom"]}
-----BEGIN PRIVATE KEY-----
{SECRETS["pem"]}
-----END PRIVATE KEY-----
2026-11-24 21:00:03 INFO all fine
"""


def build(tmp_path: Path, **options: int) -> tuple[Path, dict[str, object]]:
    folder = tmp_path / "app-logs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sync.log").write_text(PLANTED)
    (folder / "sub" / "app.log").write_text("line\n" * 10)
    builder = BundleBuilder({"site": "hq"}, redactor=Redactor([r"CUST-\d+"]), **options)
    builder.add_folder("app/0-logs", folder)
    out = tmp_path / "bundle.tar.gz"
    return out, builder.write(out)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def test_a_bundle_of_files_with_planted_secrets_contains_none_of_them(tmp_path: Path) -> None:
    out, _ = build(tmp_path)
    raw = b"".join(members(out).values())
    for name, secret in SECRETS.items():
        assert secret.encode() not in raw, name
    assert b"2026-11-24 21:00:03 INFO all fine" in raw


def test_the_manifest_lists_each_file_with_its_size_and_sha256(tmp_path: Path) -> None:
    out, _ = build(tmp_path)
    manifest = inspect_bundle(out)
    files = {f["path"]: f for f in manifest["files"]}
    assert set(files) == {"app/0-logs/sync.log", "app/0-logs/sub/app.log"}
    assert files["app/0-logs/sync.log"]["redactions"] >= 6
    import hashlib

    content = members(out)
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256(content[name]).hexdigest()
        assert entry["size"] == len(content[name])


def test_a_file_over_the_cap_keeps_its_tail_and_says_so(tmp_path: Path) -> None:
    builder = BundleBuilder({}, max_file_bytes=1024)
    builder.add_bytes("agent/agent.log", b"".join(b"line %05d\n" % i for i in range(1000)), source="x")
    builder.close()
    entry = builder.files[0]
    assert entry["size"] <= 1024
    assert "kept the last" in entry["truncated"]
    assert entry["original_size"] == 11000


def test_the_total_cap_skips_what_does_not_fit_and_says_so(tmp_path: Path) -> None:
    builder = BundleBuilder({}, max_file_bytes=2048, max_total_bytes=3000)
    for index in range(3):
        builder.add_bytes(f"f{index}.log", b"x" * 2000, source=f"f{index}")
    builder.close()
    assert builder.total <= 3000
    assert builder.files[1]["truncated"] is not None
    assert builder.skipped == [{"source": "f2", "reason": "bundle full: max_total_bytes 3000 reached"}]


def test_a_key_cut_in_half_by_the_file_cap_does_not_leak_its_second_half() -> None:
    text = "-----BEGIN PRIVATE KEY-----\n" + "A" * 5000 + "\nSECONDHALF\n-----END PRIVATE KEY-----\nafter\n"
    builder = BundleBuilder({}, max_file_bytes=200)
    builder.add_bytes("k.log", text.encode(), source="k")
    kept = builder._members[0][1].read_bytes()
    builder.close()
    assert b"SECONDHALF" not in kept
    assert b"after" in kept


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/passwd", "a\\..\\b", "a//b", ""])
def test_the_builder_refuses_a_member_name_that_escapes_its_folder(name: str) -> None:
    with pytest.raises(BundleError):
        BundleBuilder({}).add_bytes(name, b"x", source="test")


def test_the_builder_skips_symlinks_and_device_files(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (folder / "link.log").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(folder / "fifo.log")
    builder = BundleBuilder({})
    builder.add_folder("app", folder)
    assert builder.files == []
    reasons = sorted(s["reason"] for s in builder.skipped)
    assert reasons == ["not a regular file: refused", "symbolic link: refused"]


def _tar(tmp_path: Path, entries: list[tarfile.TarInfo], manifest: dict[str, object]) -> Path:
    out = tmp_path / "crafted.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for entry in entries:
            tar.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isreg() else None)
    return out


def test_the_receiving_side_refuses_a_member_that_escapes_its_folder(tmp_path: Path) -> None:
    evil = tarfile.TarInfo("../../etc/cron.d/evil")
    evil.size = 1
    crafted = _tar(tmp_path, [evil], {"files": [{"path": "../../etc/cron.d/evil", "sha256": "0"}]})
    with pytest.raises(BundleError, match="refused"):
        inspect_bundle(crafted)


def test_the_receiving_side_refuses_a_symlink_member(tmp_path: Path) -> None:
    link = tarfile.TarInfo("agent/log")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/shadow"
    crafted = _tar(tmp_path, [link], {"files": []})
    with pytest.raises(BundleError, match="only regular files"):
        inspect_bundle(crafted)


def test_the_receiving_side_refuses_a_member_that_differs_from_the_manifest(tmp_path: Path) -> None:
    member = tarfile.TarInfo("agent/agent.log")
    member.size = 3
    crafted = _tar(tmp_path, [member], {"files": [{"path": "agent/agent.log", "sha256": "0" * 64}]})
    with pytest.raises(BundleError, match="sha256"):
        inspect_bundle(crafted)


def bomb(tmp_path: Path, unpacked: int) -> Path:
    return make_bomb(tmp_path / "bomb.tar.gz", unpacked)


def test_a_bomb_is_refused_once_it_unpacks_past_its_ratio_without_unpacking_the_rest(tmp_path: Path) -> None:
    path = bomb(tmp_path, 64 * 1024 * 1024)
    assert path.stat().st_size < 200_000
    with pytest.raises(BundleError, match=r"unpacks to more than .* times the file"):
        inspect_bundle(path, Limits(unpacked_bytes=1024**3, ratio=50))


def test_a_bundle_past_the_unpacked_total_is_refused(tmp_path: Path) -> None:
    path = bomb(tmp_path, 8 * 1024 * 1024)
    with pytest.raises(BundleError, match="at most 1048576 in all"):
        inspect_bundle(path, Limits(unpacked_bytes=1024 * 1024, ratio=10_000))


def test_a_member_too_large_to_show_is_refused_reading_no_more_than_the_limit(tmp_path: Path) -> None:
    path = bomb(tmp_path, 4 * 1024 * 1024)
    with pytest.raises(MemberTooLargeError, match="over 1048576 bytes: download the bundle"):
        read_member(path, "agent/agent.log", limit=1024 * 1024)
    assert read_member(path, "manifest.json", limit=1024 * 1024).startswith(b'{"files"')


TEAMS_LOG = (
    b'2026-12-01T10:00:01Z join "displayName": "Anna Kowalska", "userPrincipalName": "anna@acme.example"\n'
    b"2026-12-01T10:00:02Z meeting subject=Quarterly review, organizer=Bob Nowak room=Boardroom\n"
    b"2026-12-01T10:00:03Z audio device changed to Rally Speaker\n"
)


def test_personal_data_is_masked_by_default_and_counted_in_the_manifest(tmp_path: Path) -> None:
    builder = BundleBuilder({"site": "hq"})
    builder.add_bytes("app/teams.log", TEAMS_LOG, source="teams")
    manifest = builder.write(tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        handle = tar.extractfile("app/teams.log")
        assert handle is not None
        text = handle.read().decode()
    for personal in (b"Anna", b"Kowalska", b"anna@acme.example", b"Quarterly", b"Bob", b"Nowak"):
        assert personal.decode() not in text
    assert "audio device changed to Rally Speaker" in text  # what the engineer needs stays
    assert "room=Boardroom" in text
    assert manifest["personal_data"]["mode"] == "mask"
    assert manifest["personal_data"]["found"]["email"] >= 1
    assert manifest["personal_data"]["found"]["name"] >= 3
    assert manifest["files"][0]["personal_data"] == manifest["personal_data"]["found"]


def test_personal_data_can_drop_its_lines_or_be_kept_where_the_customer_allows(tmp_path: Path) -> None:
    dropped = BundleBuilder({}, redactor=Redactor(personal="drop"))
    dropped.add_bytes("app/teams.log", TEAMS_LOG, source="teams")
    kept = BundleBuilder({}, redactor=Redactor(personal="keep"))
    kept.add_bytes("app/teams.log", TEAMS_LOG, source="teams")
    dropped.write(tmp_path / "d.tar.gz")
    kept.write(tmp_path / "k.tar.gz")
    with tarfile.open(tmp_path / "d.tar.gz") as tar:
        handle = tar.extractfile("app/teams.log")
        assert handle is not None
        assert handle.read() == b"2026-12-01T10:00:03Z audio device changed to Rally Speaker\n"
    with tarfile.open(tmp_path / "k.tar.gz") as tar:
        handle = tar.extractfile("app/teams.log")
        assert handle is not None
        assert handle.read() == TEAMS_LOG


def test_a_request_can_only_make_the_handling_of_personal_data_stricter() -> None:
    from diagnostics.redact import stricter

    assert stricter("keep", "mask") == "mask"
    assert stricter("mask", "drop") == "drop"
    assert stricter("drop", "keep") == "drop"
    assert stricter("mask", None) == "mask"
