"""A self-signed TLS certificate like the one a Rally Bar's local admin page presents."""

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_self_signed(
    cert_file: Path,
    key_file: Path,
    *,
    common_name: str,
    ip_addresses: Sequence[str],
    dns_names: Sequence[str],
    now: datetime.datetime | None = None,
    days: float = 365,
) -> None:
    """Generate an EC P-256 key and a self-signed certificate valid from a day ago for ``days`` (a year).

    The key is written with mode 0600; both files are PEM.
    """
    issued = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt_names: list[x509.GeneralName] = [x509.DNSName(dns) for dns in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued - datetime.timedelta(days=1))
        .not_valid_after(issued + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A self-signed leaf that clients may pin as its own CA, as browsers do after "accept the risk".
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its old mode otherwise
        out.write(key_pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def reissue(
    cert_file: Path,
    key_file: Path,
    out_file: Path,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> None:
    """Write to ``out_file`` the certificate of ``cert_file`` with other dates, signed by the same key.

    A client that pinned the original still trusts the new one (same name, same key), as after a device
    renews its own certificate; only the validity differs.
    """
    original = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{key_file}: expected the EC key write_self_signed makes")
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in original.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    out_file.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
