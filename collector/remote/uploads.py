"""Receiving log bundles: a resumable, checksum-verified upload per ``collect-logs`` command.

The protocol (docs/diagnostics.md, "Upload protocol") is a small subset of tus: ``HEAD`` answers the
offset held, ``PATCH`` appends at an offset. Bytes are written as they arrive, so a broken connection keeps
what came through and the agent resumes from there. When the declared length is reached the sha256 of the
whole bundle is checked, the bundle is inspected (``diagnostics.bundle.inspect_bundle``: safe member names,
regular files, checksums from the manifest) and stored under ``bundle_dir`` with its retention date.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from collector import audit, tickets
from collector.errors import CollectorError
from collector.remote.commander import Commander
from collector.remote.keys import token_digest
from collector.store.schema import bundles
from collector.store.schema import commands as command_table
from collector.store.schema import tickets as ticket_table
from diagnostics.bundle import BundleError, Limits, file_sha256, inspect_bundle

log = logging.getLogger(__name__)


class UploadProblem(CollectorError):  # noqa: N818 (becomes an HTTP answer)
    """An upload request refused, with the HTTP status the upload protocol gives it and, where the client
    should resume, the offset held."""

    code = "upload-refused"

    def __init__(self, status: int, reason: str, offset: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.offset = offset

    def headers(self) -> dict[str, str]:
        found = {"Upload-Offset": str(self.offset)} if self.offset is not None else {}
        if self.status == 401:
            found["WWW-Authenticate"] = 'Bearer realm="hezo-upload"'
        return found


class Uploads:
    def __init__(self, commander: Commander) -> None:
        self.commander = commander
        self.settings = commander.settings
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _partial(self, command_id: str) -> Path:
        folder = self.settings.bundle_dir / "partial"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{command_id}.part"

    def _lock(self, command_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(command_id, threading.Lock())

    def authorise(self, command_id: str, authorization: str | None, *, done_ok: bool = False) -> Any:
        """The command row the token opens, or ``UploadProblem``; a finished upload only with ``done_ok``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UploadProblem(401, "missing Authorization: Bearer <upload token>")
        with self.commander.engine.connect() as conn:
            row = conn.execute(select(command_table).where(command_table.c.id == command_id)).first()
            done = conn.execute(select(bundles).where(bundles.c.command_id == command_id)).first()
        if row is None or row.upload_token_sha256 is None:
            raise UploadProblem(404, "no upload expected for this command")
        if not hmac.compare_digest(row.upload_token_sha256, token_digest(token)):
            raise UploadProblem(403, "wrong upload token")
        if done is not None and not done_ok:
            raise UploadProblem(410, "this upload is complete; the token is spent")
        if self.commander.now() > row.expires_at + timedelta(seconds=self.settings.command_ttl):
            raise UploadProblem(410, "the upload token has expired")
        return row

    def offset(self, command_id: str, authorization: str | None) -> tuple[int, dict[str, Any] | None]:
        """The bytes held, and the stored bundle if the upload is complete.

        A finished upload still answers ``HEAD``: an agent whose connection broke just after the last byte
        (before it read the 201) learns that its bundle arrived instead of starting again.
        """
        self.authorise(command_id, authorization, done_ok=True)
        with self.commander.engine.connect() as conn:
            done = conn.execute(select(bundles).where(bundles.c.command_id == command_id)).first()
        if done is not None:
            return done.size, {"bundle": done.id, "sha256": done.sha256, "size": done.size}
        path = self._partial(command_id)
        return (path.stat().st_size if path.exists() else 0), None

    async def append(  # noqa: PLR0917 (one per upload header)
        self,
        command_id: str,
        authorization: str | None,
        offset: int,
        length: int,
        sha256: str,
        body: AsyncIterator[bytes],
    ) -> dict[str, Any] | int:
        """Append ``body`` at ``offset``; the new offset, or the stored bundle's description when complete."""
        row = self.authorise(command_id, authorization)
        if not 0 < length <= self.settings.max_bundle_bytes:
            raise UploadProblem(413, f"Upload-Length must be 1..{self.settings.max_bundle_bytes} bytes")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise UploadProblem(400, "Upload-Sha256 must be 64 lower-case hex digits")
        with self.commander.engine.begin() as conn:
            if row.upload_length is None:
                self._reserve(conn, length)
                conn.execute(
                    update(command_table)
                    .where(command_table.c.id == command_id)
                    .values(upload_length=length, upload_sha256=sha256)
                )
            elif (row.upload_length, row.upload_sha256) != (length, sha256):
                raise UploadProblem(409, "Upload-Length or Upload-Sha256 differ from the first request")
        lock = self._lock(command_id)
        if not lock.acquire(blocking=False):
            raise UploadProblem(423, "another request is uploading this bundle")
        try:
            path = self._partial(command_id)
            held = path.stat().st_size if path.exists() else 0
            if offset != held:
                raise UploadProblem(409, f"offset {offset} does not match the {held} bytes held", held)
            with path.open("ab") as handle:
                try:
                    async for chunk in body:
                        if held + len(chunk) > length:
                            raise UploadProblem(413, "more bytes than Upload-Length")
                        handle.write(chunk)
                        held += len(chunk)
                finally:
                    handle.flush()
            if held < length:
                return held
            # The checksum and the bundle check read the whole file: off the event loop, so the web server
            # (and /healthz) keeps answering meanwhile.
            stored = await asyncio.to_thread(self._complete, row, path, length, sha256)
        finally:
            lock.release()
        with self._guard:
            self._locks.pop(command_id, None)
        return stored

    def _reserve(self, conn: Any, length: int) -> None:
        """Refuse a new upload whose length, with that of the uploads not finished yet, would take more disk
        than ``max_partial_bytes``: unfinished uploads cannot fill the disk, however many tokens there are."""
        open_until = self.commander.now() - timedelta(seconds=self.settings.command_ttl)
        pending = select(func.coalesce(func.sum(command_table.c.upload_length), 0)).where(
            command_table.c.upload_length.is_not(None),
            command_table.c.expires_at > open_until,  # an upload may still go on (``authorise``)
            command_table.c.id.not_in(select(bundles.c.command_id).where(bundles.c.command_id.is_not(None))),
        )
        taken = int(conn.execute(pending).scalar_one())
        quota = self.settings.max_partial_bytes
        if taken + length > quota:
            raise UploadProblem(
                507, f"uploads in progress hold {taken} of {quota} bytes: not room for {length} more now"
            )

    def _complete(self, row: Any, path: Path, length: int, sha256: str) -> dict[str, Any]:
        now = self.commander.now()
        actual = file_sha256(path)
        problem = None
        manifest: dict[str, Any] = {}
        if actual != sha256:
            problem = f"sha256 {actual} does not match the declared {sha256}"
        else:
            try:
                limits = Limits(self.settings.max_unpacked_bytes, self.settings.max_unpack_ratio)
                manifest = inspect_bundle(path, limits)
            except BundleError as exc:
                problem = f"bundle refused: {exc}"
        if problem is not None:
            path.unlink(missing_ok=True)
            with self.commander.engine.begin() as conn:
                conn.execute(
                    update(command_table)
                    .where(command_table.c.id == row.id)
                    .values(upload_length=None, upload_sha256=None)
                )
                audit.record(
                    conn,
                    now,
                    "bundle-refused",
                    problem,
                    actor=f"agent:{row.agent}",
                    site=row.site,
                    agent=row.agent,
                    command_id=row.id,
                    action=row.action,
                )
            log.warning("bundle of command %s refused: %s", row.id, problem)
            raise UploadProblem(422, problem, 0)
        final_dir = self.settings.bundle_dir / row.site / row.agent
        final_dir.mkdir(parents=True, exist_ok=True)
        final = final_dir / f"{row.id}.tar.gz"
        path.replace(final)
        expires = now + timedelta(days=self.settings.retention_days)
        with self.commander.engine.begin() as conn:
            result = conn.execute(
                insert(bundles).values(
                    command_id=row.id,
                    site=row.site,
                    agent=row.agent,
                    device=row.device,
                    ticket=row.ticket,
                    path=str(final.resolve()),
                    size=length,
                    sha256=sha256,
                    manifest=manifest,
                    created_at=now,
                    expires_at=expires,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            bundle_id = int(key[0])
            files = len(manifest.get("files", []))
            audit.record(
                conn,
                now,
                "bundle-stored",
                f"bundle {bundle_id}: {length} bytes, {files} files, sha256 {sha256[:12]}",
                actor=f"agent:{row.agent}",
                site=row.site,
                agent=row.agent,
                command_id=row.id,
                action=row.action,
            )
            if row.ticket:
                ticket_id = conn.execute(
                    select(ticket_table.c.id).where(ticket_table.c.number == row.ticket)
                ).scalar()
                if ticket_id is not None:
                    tickets.add_entry(
                        conn,
                        ticket_id,
                        now,
                        "log-bundle",
                        f"Log bundle {bundle_id} attached: {files} files, {length} bytes, "
                        f"sha256 {sha256}; /api/bundles/{bundle_id}",
                    )
        log.info("bundle %d of %s/%s stored (%d bytes)", bundle_id, row.site, row.agent, length)
        return {"bundle": bundle_id, "sha256": sha256, "size": length}
