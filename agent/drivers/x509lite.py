"""Just enough DER to read a certificate's validity and whether it is self-signed, without a crypto library.

The https driver is part of the base agent, which does not depend on ``cryptography`` (only the command
channel does). The ``ssl`` module hands over the peer certificate as DER bytes even when it does not verify
it, but decodes only a verified one; the validity dates sit at a fixed place in ``TBSCertificate`` (RFC 5280,
4.1), so reading them takes some 70 lines. Its tests read certificates made by ``cryptography``. A certificate
it cannot read is reported as a fact of the check (``cert: unreadable: ...``), never as a failed check.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from agent.errors import AgentError

_SEQUENCE, _INTEGER, _UTC_TIME, _GENERALIZED_TIME, _VERSION = 0x30, 0x02, 0x17, 0x18, 0xA0


class CertificateError(AgentError):
    """The bytes are not a DER certificate this reader understands."""


@dataclass(frozen=True)
class CertificateDates:
    not_before: datetime
    not_after: datetime
    self_signed: bool  # issuer and subject are the same name


def _element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise CertificateError("truncated")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise CertificateError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise CertificateError("truncated")
    return tag, start, end


def _expect(data: bytes, offset: int, tag: int, what: str) -> tuple[int, int]:
    found, start, end = _element(data, offset)
    if found != tag:
        raise CertificateError(f"expected {what}")
    return start, end


def _time(data: bytes, offset: int) -> tuple[datetime, int]:
    tag, start, end = _element(data, offset)
    text = data[start:end].decode("ascii", errors="replace")
    try:
        if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; 50-99 are 19xx (RFC 5280, 4.1.2.5.1)
            stamp = datetime.strptime(text, "%y%m%d%H%M%SZ")
            if stamp.year >= 2050:
                stamp = stamp.replace(year=stamp.year - 100)
        elif tag == _GENERALIZED_TIME:
            stamp = datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            raise CertificateError("expected a time")
    except ValueError as exc:
        raise CertificateError(f"bad time {text!r}") from exc
    return stamp.replace(tzinfo=UTC), end


def certificate_dates(der: bytes) -> CertificateDates:
    """Validity and self-signedness of a DER certificate; ``CertificateError`` if it cannot be read."""
    cert_start, _ = _expect(der, 0, _SEQUENCE, "a certificate")
    offset, _ = _expect(der, cert_start, _SEQUENCE, "TBSCertificate")
    tag, _, end = _element(der, offset)
    if tag == _VERSION:
        offset = end
    _, offset = _expect(der, offset, _INTEGER, "a serial number")
    _, offset = _expect(der, offset, _SEQUENCE, "a signature algorithm")
    issuer_at = offset
    _, offset = _expect(der, offset, _SEQUENCE, "an issuer")
    issuer = der[issuer_at:offset]
    validity_start, validity_end = _expect(der, offset, _SEQUENCE, "a validity")
    not_before, after_at = _time(der, validity_start)
    not_after, _ = _time(der, after_at)
    subject_at = validity_end
    _, subject_end = _expect(der, subject_at, _SEQUENCE, "a subject")
    return CertificateDates(not_before, not_after, der[subject_at:subject_end] == issuer)
