"""Secrets out of text before it leaves the machine: passwords, tokens, keys, PEM private keys, Authorization.

Redaction works on bytes decoded as Latin-1 (every byte maps to one character and back), so a file in any
encoding comes out byte for byte the same except for the redacted spans. What a pattern matched is replaced
by ``[REDACTED]``; for ``name = value`` pairs the name stays, so a reader still sees that a password was set.
"""

import re
from dataclasses import dataclass, field

MASK = "[REDACTED]"

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
    """Applies the built-in patterns and ``extra`` regular expressions (each whole match is masked)."""

    extra: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._extra = [re.compile(pattern) for pattern in self.extra]

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
        return text, count

    def data(self, data: bytes, *, cut_front: bool = False) -> tuple[bytes, int]:
        """``data`` (any encoding) with its secrets masked, and how many spans were masked."""
        text, count = self.text(data.decode("latin-1"), cut_front=cut_front)
        return text.encode("latin-1", errors="replace"), count
