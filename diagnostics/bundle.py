"""Log bundles: a tar.gz with ``manifest.json`` first, every member redacted, capped and checksummed.

The builder takes bytes or regular files, masks secrets (``diagnostics.redact``), keeps the tail of a file
longer than ``max_file_bytes`` and stops adding past ``max_total_bytes``; every cut is recorded in the
manifest. Member names are relative POSIX paths inside the bundle; a name that could escape its folder
(``..``, absolute, a backslash, NUL) is refused, and so are symlinks and device files. ``inspect_bundle``
makes the same checks on the receiving side and verifies every member against the manifest.
"""

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from diagnostics.errors import DiagnosticsError
from diagnostics.redact import Redactor
from protocol import format_ts

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
FORMAT = 1


class BundleError(DiagnosticsError):
    """A bundle, or something to put in one, is not acceptable; the message says why."""


def safe_member_name(name: str) -> str:
    """``name`` if it is a relative path that stays inside the bundle, else raise ``BundleError``."""
    if not name or "\x00" in name or "\\" in name:
        raise BundleError(f"member name {name!r}: empty, or has NUL or a backslash")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise BundleError(f"member name {name!r}: absolute paths are refused")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BundleError(f"member name {name!r}: '..', '.' and empty parts are refused")
    if len(name) > 1024:
        raise BundleError("member name longer than 1024 characters")
    return name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class BundleBuilder:
    """Collects redacted members in a temporary spool folder, then writes the tar.gz with the manifest first.

    Only one member (at most ``max_file_bytes``) is in memory at a time, so a bundle of ``max_total_bytes``
    fits an agent with a small memory limit.
    """

    origin: dict[str, Any]
    max_file_bytes: int = 20 * 1024 * 1024
    max_total_bytes: int = 200 * 1024 * 1024
    redactor: Redactor = field(default_factory=Redactor)
    _members: list[tuple[str, Path]] = field(default_factory=list)
    _spool: tempfile.TemporaryDirectory[str] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    total: int = 0

    def skip(self, source: str, reason: str) -> None:
        """Record that ``source`` is not in the bundle, and why."""
        self.skipped.append({"source": source, "reason": reason})

    def add_bytes(self, name: str, data: bytes, *, source: str, cut_front: bool = False) -> None:
        """Add ``data`` as ``name`` after redaction; cut to the caps, recording each cut."""
        safe_member_name(name)
        if name == MANIFEST or any(existing == name for existing, _ in self._members):  # few members
            raise BundleError(f"member name {name!r} is used already")
        original = len(data)
        truncated = None
        if original > self.max_file_bytes:
            data = data[original - self.max_file_bytes :]
            newline = data.find(b"\n")
            if 0 <= newline < 4096:
                data = data[newline + 1 :]  # start on a whole line
            truncated = f"kept the last {len(data)} of {original} bytes (max_file_bytes)"
            cut_front = True
        before = self.redactor.personal_counts.copy()
        data, redactions = self.redactor.data(data, cut_front=cut_front)
        personal = dict(self.redactor.personal_counts - before)
        room = self.max_total_bytes - self.total
        if room <= 0:
            self.skip(source, f"bundle full: max_total_bytes {self.max_total_bytes} reached")
            return
        if len(data) > room:
            data = data[len(data) - room :]
            truncated = f"kept the last {len(data)} of {original} bytes (max_total_bytes)"
        if self._spool is None:
            self._spool = tempfile.TemporaryDirectory(prefix="hezo-bundle-")
        spooled = Path(self._spool.name) / str(len(self._members))
        spooled.write_bytes(data)
        self._members.append((name, spooled))
        self.total += len(data)
        self.files.append(
            {
                "path": name,
                "source": source,
                "size": len(data),
                "original_size": original,
                "sha256": _sha256(data),
                "redactions": redactions,
                "personal_data": personal,
                "truncated": truncated,
            }
        )

    def add_file(self, name: str, path: Path) -> None:
        """Add one regular file; a symlink, a device or an unreadable file is skipped with the reason."""
        try:
            info = path.lstat()
        except OSError as exc:
            self.skip(str(path), f"cannot read: {exc.strerror or exc}")
            return
        if stat.S_ISLNK(info.st_mode):
            self.skip(str(path), "symbolic link: refused")
            return
        if not stat.S_ISREG(info.st_mode):
            self.skip(str(path), "not a regular file: refused")
            return
        try:
            with path.open("rb") as handle:
                cut = info.st_size > self.max_file_bytes
                if cut:
                    handle.seek(info.st_size - self.max_file_bytes)
                data = handle.read(self.max_file_bytes)
        except OSError as exc:
            self.skip(str(path), f"cannot read: {exc.strerror or exc}")
            return
        before = len(self.files)
        self.add_bytes(name, data, source=str(path), cut_front=cut)
        if cut and len(self.files) > before:
            entry = self.files[-1]
            entry["original_size"] = info.st_size
            entry["truncated"] = entry["truncated"] or (
                f"kept the last {entry['size']} of {info.st_size} bytes (max_file_bytes)"
            )

    def add_folder(self, prefix: str, folder: Path) -> None:
        """Add the regular files under ``folder`` as ``prefix/relative/path``; never follows symlinks."""
        if not folder.is_dir():
            self.skip(str(folder), "no such folder")
            return
        for root, dirs, names in os.walk(folder, followlinks=False):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                relative = path.relative_to(folder).as_posix()
                try:
                    member = safe_member_name(f"{prefix}/{relative}")
                except BundleError as exc:
                    self.skip(str(path), str(exc))
                    continue
                self.add_file(member, path)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": format_ts(datetime.now(UTC)),
            "origin": self.origin,
            "files": self.files,
            "skipped": self.skipped,
            "total_bytes": self.total,
            "max_file_bytes": self.max_file_bytes,
            "max_total_bytes": self.max_total_bytes,
            "personal_data": {
                "mode": self.redactor.personal,
                "found": dict(self.redactor.personal_counts),
            },
        }

    def write(self, out: Path) -> dict[str, Any]:
        """Write the bundle to ``out``; return its manifest."""
        manifest = self.manifest()
        now = time.time()
        with (
            out.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            document = json.dumps(manifest, indent=2).encode()
            tar.addfile(self._info(MANIFEST, len(document), now), io.BytesIO(document))
            for name, spooled in self._members:
                with spooled.open("rb") as handle:
                    tar.addfile(self._info(name, spooled.stat().st_size, now), handle)
        self.close()
        return manifest

    @staticmethod
    def _info(name: str, size: int, now: float) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(now)
        info.mode = 0o644
        return info

    def close(self) -> None:
        """Delete the spool (``write`` does it; call it when a bundle is abandoned)."""
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None
        self._members = []


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Limits:
    """How much a received bundle may hold once unpacked, in all and per byte of the file: counted on the
    bytes as they stream out, never on what the tar headers claim."""

    unpacked_bytes: int = 2 * 1024**3
    ratio: float = 200.0


class _Meter:
    """Counts unpacked bytes; ``BundleError`` the moment they pass a limit (a bomb stops early)."""

    def __init__(self, limits: Limits, packed: int) -> None:
        self.limit = min(limits.unpacked_bytes, int(limits.ratio * max(packed, 1)))
        self.limits = limits
        self.total = 0

    def count(self, size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise BundleError(
                f"unpacks to more than {self.limit} bytes (at most {self.limits.unpacked_bytes} in all and "
                f"{self.limits.ratio:g} times the file): refused"
            )


def _read(tar: tarfile.TarFile, meter: _Meter) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The manifest (if any) and the sha256 of every other member, refusing unsafe members."""
    manifest: dict[str, Any] | None = None
    seen: dict[str, str] = {}
    for member in tar:
        safe_member_name(member.name)
        if not member.isreg():
            raise BundleError(f"member {member.name!r}: only regular files are accepted")
        handle = tar.extractfile(member)
        assert handle is not None
        if member.name == MANIFEST:
            if member.size > MAX_MANIFEST_BYTES:
                raise BundleError(f"manifest.json is over {MAX_MANIFEST_BYTES} bytes")
            data = handle.read(MAX_MANIFEST_BYTES + 1)
            meter.count(len(data))
            try:
                manifest = json.loads(data)
            except ValueError as exc:
                raise BundleError(f"manifest.json is not JSON: {exc}") from None
            continue
        if member.name in seen:
            raise BundleError(f"member {member.name!r} appears twice")
        hasher = hashlib.sha256()
        while chunk := handle.read(1024 * 1024):
            meter.count(len(chunk))
            hasher.update(chunk)
        seen[member.name] = hasher.hexdigest()
    return manifest, seen


def inspect_bundle(source: Path | BinaryIO, limits: Limits | None = None) -> dict[str, Any]:
    """Check a received bundle and return its manifest; raise ``BundleError`` saying what is wrong.

    Nothing is extracted: members are read and hashed as a stream, in bounded memory, and the reading stops
    as soon as the unpacked bytes pass ``limits``. Every member must be a regular file with a safe name,
    listed in the manifest with the sha256 it has.
    """
    packed = source.stat().st_size if isinstance(source, Path) else _size(source)
    meter = _Meter(limits or Limits(), packed)
    try:
        tar = (
            tarfile.open(source, mode="r:gz")  # noqa: SIM115 (closed by the with below)
            if isinstance(source, Path)
            else tarfile.open(fileobj=source, mode="r:gz")  # noqa: SIM115
        )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"not a tar.gz bundle: {exc}") from None
    with tar:
        try:
            manifest, seen = _read(tar, meter)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"damaged bundle: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise BundleError("no manifest.json with a list of files")
    listed = {}
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise BundleError("manifest.json: every file needs a path")
        listed[safe_member_name(entry["path"])] = entry.get("sha256")
    if set(listed) != set(seen):
        raise BundleError(
            f"manifest and members differ: unlisted {sorted(set(seen) - set(listed))}, "
            f"missing {sorted(set(listed) - set(seen))}"
        )
    for name, digest in seen.items():
        if listed[name] != digest:
            raise BundleError(f"member {name!r}: sha256 does not match the manifest")
    return manifest


class MemberTooLargeError(BundleError):
    """A member too large to show: download the bundle instead."""


def read_member(path: Path, name: str, limit: int = 8 * 1024 * 1024) -> bytes:
    """One member's content (for the web page), after the same name checks; ``KeyError`` if absent,
    ``MemberTooLargeError`` past ``limit`` bytes (read no further than that, whatever its header says)."""
    safe_member_name(name)
    with tarfile.open(path, mode="r:gz") as tar:
        for member in tar:  # up to the member only: not through the rest of the archive
            if member.name == name:
                break
        else:
            raise KeyError(name)
        if not member.isreg():
            raise BundleError(f"member {name!r} is not a regular file")
        if member.size > limit:
            raise MemberTooLargeError(too_large(name, limit))
        handle = tar.extractfile(member)
        assert handle is not None
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise MemberTooLargeError(too_large(name, limit))
    return data


def too_large(name: str, limit: int) -> str:
    return f"member {name!r} is over {limit} bytes: download the bundle to read it"


def _size(handle: BinaryIO) -> int:
    """The bytes left in a seekable file, read from where it stands."""
    here = handle.tell()
    end = handle.seek(0, 2)
    handle.seek(here)
    return end - here
