"""Secrets out of text before it leaves the machine: passwords, tokens, keys, PEM private keys, Authorization;
and personal data a provider must not collect by default: e-mail addresses, and the names of people and
meetings in the meeting-room software's logs.

Redaction works on bytes decoded as Latin-1 (every byte maps to one character and back), so a file in any
encoding comes out byte for byte the same except for the redacted spans. What a pattern matched is replaced
by ``[REDACTED]``; for ``name = value`` pairs the name stays, so a reader still sees that a password was set.
Personal data is ``mask``-ed (``[PERSONAL]``, the key kept), its lines ``drop``-ped whole, or, where the
customer allows it, ``keep``-ed; each kind found is counted, for the bundle's manifest.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

MASK = "[REDACTED]"
PERSONAL = "[PERSONAL]"

#: What to do with personal data, from the most to the least careful.
PersonalData = Literal["drop", "mask", "keep"]
PERSONAL_MODES: tuple[PersonalData, ...] = ("drop", "mask", "keep")


def stricter(*modes: PersonalData | None) -> PersonalData:
    """The most careful of ``modes`` (``mask`` when none is given)."""
    given = [mode for mode in modes if mode is not None]
    return min(given, key=PERSONAL_MODES.index) if given else "mask"


_EMAIL = re.compile(r"(?i)\b[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}\b")
# Keys under which meeting software logs a person's or a meeting's name: "displayName": "Ann", organizer=Bob.
_NAMED = re.compile(
    r"(?i)((?:\"|')?\b(?:display[_-]?name|user[_-]?name|user[_-]?principal[_-]?name|upn|full[_-]?name|"
    r"organi[sz]er(?:[_-]?name)?|attendees?|participants?(?:[_-]?name)?|caller(?:[_-]?name)?|callee|"
    r"meeting[_-]?(?:title|name|subject)|subject|topic)(?:\"|')?\s*[:=]\s*)"
    # quoted, or bare words up to the next key=value pair, a separator or the line's end: "Anna Kowalska"
    r"(\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\s,;&\"'}\]][^,;&\"'}\]\r\n]*?(?=\s+[A-Za-z_][\w.-]*\s*[:=]|[,;&}\]\r\n]|$))",
    re.MULTILINE,
)
_KINDS = (("email", _EMAIL), ("name", _NAMED))

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
# A file cut from the front may start inside a key block: everything up to its END line goes.
_PEM_TAIL = re.compile(r"\A(?:(?!-----BEGIN ).)*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.DOTALL)
_AUTHORIZATION = re.compile(r"(?im)^(\s*(?:proxy-)?authorization\s*[:=]\s*)(.+)$")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_PAIR = re.compile(
    r"(?i)((?:\"|')?\b[A-Za-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|credentials?|auth[_-]?key|session[_-]?id|cookie)[A-Za-z0-9_.-]*"
    r"(?:\"|')?\s*[:=]\s*)(\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\s,;&\"'}]+)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)")


@dataclass
class Redactor:
    """Applies the built-in patterns and ``extra`` regular expressions (each whole match is masked), and
    treats personal data as ``personal`` says; ``personal_counts`` adds up what it found, by kind."""

    extra: list[str] = field(default_factory=list)
    personal: PersonalData = "mask"
    personal_counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._extra = [re.compile(pattern) for pattern in self.extra]

    def personal_data(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with its personal data masked or its lines dropped (or kept); how many of each kind."""
        found: Counter[str] = Counter()
        if self.personal == "keep":
            return text, found
        if self.personal == "drop":
            kept = []
            for line in text.splitlines(keepends=True):
                hits = [kind for kind, pattern in _KINDS if pattern.search(line)]
                if hits:
                    found.update(hits)
                else:
                    kept.append(line)
            return "".join(kept), found
        text, emails = _EMAIL.subn(PERSONAL, text)
        text, names = _NAMED.subn(f"\\1{PERSONAL}", text)
        found.update({"email": emails, "name": names})
        return text, +found

    def text(self, text: str, *, cut_front: bool = False) -> tuple[str, int]:
        """``text`` with its secrets masked, and how many spans were masked."""
        count = 0

        def sub(pattern: re.Pattern[str], repl: str, value: str) -> str:
            nonlocal count
            value, n = pattern.subn(repl, value)
            count += n
            return value

        if cut_front:
            text = sub(_PEM_TAIL, MASK, text)
        text = sub(_PEM_BLOCK, f"-----BEGIN \\1PRIVATE KEY-----{MASK}-----END \\1PRIVATE KEY-----", text)
        text = sub(_AUTHORIZATION, f"\\1{MASK}", text)
        text = sub(_BEARER, f"\\1\\2{MASK}", text)
        text = sub(_URL_PASSWORD, f"\\1{MASK}\\3", text)
        text = sub(_PAIR, f"\\1{MASK}", text)
        for pattern in self._extra:
            text = sub(pattern, MASK, text)
        text, personal = self.personal_data(text)
        self.personal_counts.update(personal)
        return text, count

    def data(self, data: bytes, *, cut_front: bool = False) -> tuple[bytes, int]:
        """``data`` (any encoding) with its secrets masked, and how many spans were masked."""
        text, count = self.text(data.decode("latin-1"), cut_front=cut_front)
        return text.encode("latin-1", errors="replace"), count
