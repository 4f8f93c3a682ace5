"""A real Request Tracker 5 for the rt sink's tests: Debian's request-tracker5 (scripts/system-deps.sh --rt),
with a SQLite database of its own, served by rt-server on a free loopback port.

RT reads only this instance's site config (RT_SITE_CONFIG, and an empty RT_SITE_CONFIG_DIR so the system's
RT_SiteConfig.d is left out); its web path is the root, so REST 2 answers under /REST/2.0. The setup makes two
users with rights on every queue and an RT::AuthToken each: ``hezo`` (what the sink logs in as) and
``alice`` (an engineer working in RT), and a token for ``root`` to make a queue per test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.mosquitto import free_port, listening_pid_owns

RT_LIB = Path("/usr/share/request-tracker5/lib")
RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")

SITE_CONFIG = """\
Set($rtname, 'hezo.test');
Set($Organization, 'hezo.test');
Set($CorrespondAddress, 'rt@hezo.test');
Set($CommentAddress, 'rt-comment@hezo.test');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{workdir}/rt.db');
Set($WebPath, '');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($MasonDataDir, '{workdir}/mason');
Set($MasonSessionDir, '{workdir}/sessions');
Set($LogToSTDERR, 'error');
Set($LogToSyslog, undef);
Set($LogToFile, undef);
Set($Timezone, 'UTC');
Set($MailCommand, 'testfile');
1;
"""

#: Users, their rights on every queue, and a token each: printed as "name token" lines.
SETUP = r"""
use strict; use warnings;
use RT; RT::LoadConfig(); RT::Init();
# hezo gets what docs/notifications.md asks an administrator to grant; clerk the same but ModifyTicket
# (so it may not resolve); alice what an engineer has.
my %rights = (
    hezo => [qw(SeeQueue ShowTicket CreateTicket CommentOnTicket ShowTicketComments ModifyTicket)],
    clerk => [qw(SeeQueue ShowTicket CreateTicket CommentOnTicket ShowTicketComments)],
    alice => [qw(SeeQueue ShowTicket CreateTicket CommentOnTicket ShowTicketComments
                 ReplyToTicket ModifyTicket)],
);
for my $name ('hezo', 'clerk', 'alice', 'root') {
    my $user = RT::User->new(RT->SystemUser);
    if ($name eq 'root') {
        $user->Load('root');
    } else {
        my ($id, $msg) = $user->Create(Name => $name, EmailAddress => "$name\@hezo.test", Privileged => 1);
        die "user $name: $msg" unless $id;
        for my $right (@{ $rights{$name} }) {
            my ($ok, $why) = $user->PrincipalObj->GrantRight(Right => $right, Object => RT->System);
            die "$name $right: $why" unless $ok;
        }
    }
    my $token = RT::AuthToken->new(RT->SystemUser);
    my ($id, $msg, $auth) = $token->Create(Owner => $user->Id, Description => 'hezo tests');
    die "token $name: $msg" unless $id;
    print "$name $auth\n";
}
"""


@dataclass
class RequestTracker:
    """A running RT; ``url`` is its web address (REST 2 under ``url/REST/2.0``)."""

    workdir: Path
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from nothing to REST 2 answering, setup included

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RT_SITE_CONFIG": str(self.workdir / "RT_SiteConfig.pm"),
            "RT_SITE_CONFIG_DIR": str(self.workdir / "site.d"),
            "PERL5LIB": str(RT_LIB),
        }

    def start(self) -> None:
        began = time.monotonic()
        if not RT_SERVER.exists():
            raise RuntimeError(
                "Request Tracker 5 is not installed: run sh scripts/system-deps.sh --rt as root"
            )
        for name in ("mason", "sessions", "site.d"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        self._configure(free_port())
        self._run([str(SETUP_DATABASE), "--action", "init", "--skip-create"])
        for line in self._run(["perl", "-e", SETUP]).splitlines():
            name, token = line.split()
            self.tokens[name] = token
        for _ in range(5):
            if self._launch():
                self.started_in = time.monotonic() - began
                return
            self._configure(free_port())
        raise RuntimeError(f"rt-server could not listen; see {self.workdir / 'rt.log'}")

    def _configure(self, port: int) -> None:
        self.port = port
        text = SITE_CONFIG.format(workdir=self.workdir, port=port)
        (self.workdir / "RT_SiteConfig.pm").write_text(text)

    def _run(self, argv: list[str]) -> str:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def _launch(self) -> bool:
        argv = [str(RT_SERVER), "--listen", f"127.0.0.1:{self.port}", "--max-workers", "2"]
        with (self.workdir / "rt.log").open("ab") as log:
            process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False  # the port was taken between free_port() and the bind
            if listening_pid_owns(process.pid, self.port):
                self.process = process
                return True
            time.sleep(0.05)
        self._end(process)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self._end(self.process)
            self.process = None

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        """TERM to rt-server and its workers (its own process group), and wait until all are gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)

    # -- what people do in RT, through its REST 2 API --------------------------------------------------

    def call(self, user: str, method: str, path: str, **options: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.tokens[user]}"}
        response = requests.request(
            method, f"{self.url}/REST/2.0{path}", headers=headers, timeout=30, **options
        )
        response.raise_for_status()
        return response

    def new_queue(self) -> str:
        """A queue of the test's own, so tests sharing this RT never see each other's tickets."""
        name = f"rooms-{uuid.uuid4().hex[:10]}"
        self.call("root", "POST", "/queue", json={"Name": name, "Description": "meeting rooms"})
        return name

    def ticket(self, number: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("root", "GET", f"/ticket/{number}").json()
        return body

    def tickets(self, queue: str) -> list[dict[str, Any]]:
        query = {"query": f"Queue = '{queue}'", "fields": "Subject,Status,Priority", "per_page": 100}
        items: list[dict[str, Any]] = self.call("root", "GET", "/tickets", params=query).json()["items"]
        return items

    def said(self, number: str) -> list[tuple[str, str, str]]:
        """(type, author, text) of each create, comment and correspondence on RT ticket ``number``."""
        query = [
            {"field": "ObjectType", "value": "RT::Ticket"},
            {"field": "ObjectId", "value": number},
        ] + [{"field": "Type", "value": kind} for kind in ("Create", "Comment", "Correspond")]
        fields = {"fields": "Type,Creator", "orderby": "id", "order": "ASC", "per_page": 100}
        found = self.call("root", "POST", "/transactions", json=query, params=fields).json()["items"]
        said = []
        for item in found:
            parts = self.call(
                "root",
                "POST",
                "/attachments",
                json=[{"field": "TransactionId", "value": item["id"]}],
                params={"fields": "ContentType,Content"},
            ).json()["items"]
            text = "".join(part["Content"] for part in parts if part["ContentType"].startswith("text/"))
            said.append((item["Type"], item["Creator"]["id"], text))
        return said

    def comment(
        self, number: str, text: str, *, user: str = "alice", kind: str = "comment", html: bool = False
    ) -> None:
        """``kind`` ``comment`` (internal) or ``correspond`` (a reply to the requestor); plain text, or HTML
        as RT's rich-text editor sends it."""
        body = {"Content": text, "ContentType": "text/html" if html else "text/plain"}
        self.call(user, "POST", f"/ticket/{number}/{kind}", json=body)

    def set_status(self, number: str, status: str, *, user: str = "alice") -> None:
        self.call(user, "PUT", f"/ticket/{number}", json={"Status": status})
