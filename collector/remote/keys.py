"""The collector's Ed25519 signing key (made by ``hezo-collector keygen``, checked at start), and upload
tokens, kept only as digests."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from common.configfile import ConfigError


def keygen(path: Path) -> Path:
    """Write a new Ed25519 private key to ``path`` (mode 0600) and its public key to ``path.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_bytes(public)
    return public_path


def load_private_key(path: Path) -> Any:
    """The collector's signing key; ``ConfigError`` if missing, readable by others, or not Ed25519."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    where = f"diagnostics.key_file: {path}"
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            f"{where}: mode {stat.S_IMODE(info.st_mode):04o} lets others read the signing key; chmod 600 it"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: expected an Ed25519 key (hezo-collector keygen makes one)")
    return key


def token_digest(token: str) -> str:
    """What the store keeps of an upload token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()
