"""SNMPv3 privacy (AES, DES, 3DES) on the OpenSSL that Python's ``ssl`` module has already loaded.

pysnmp encrypts with ``cryptography``, and imports it as soon as it is imported itself, whatever the checks
use: about 8 MB of resident memory (``cryptography``'s Rust bindings and the copy of OpenSSL linked into them)
for ciphers the process already holds in ``libcrypto``, which ``ssl`` and ``hashlib`` are linked with. And
pysnmp does not require ``cryptography``: installed without it, every SNMPv3 request with a privacy key
fails ("encryption error").

So ``install()`` imports pysnmp's three cipher modules with ``cryptography`` held back (unless something has
imported it already) and gives them ciphers made of libcrypto's EVP functions, reached through ctypes, in the
shape they ask of ``cryptography``: ``Cipher(...).encryptor()`` / ``.decryptor()``, then ``update`` and
``finalize``. Each module has one such function, ``_cryptography_cipher(key, iv)``, and a flag
``PysnmpCryptoError`` saying that no cipher is there. Where libcrypto's functions cannot be reached (Python's
``ssl`` linked statically) or pysnmp's modules are not as described, pysnmp is left to use ``cryptography``
as it does on its own.

Call ``install()`` before the first pysnmp import that reaches ``pysnmp.entity`` or ``pysnmp.hlapi`` (the
session and the trap receiver do). It does its work once, in the thread that first calls it; other threads
importing ``cryptography`` at that same moment would be refused it, and the agent's only such thread is the
event loop's, where ``install`` itself runs.
"""

import ctypes
import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: libcrypto's cipher for a name and a key length, as pysnmp's modules ask for them.
EVP_CIPHERS = {
    ("aes-cfb128", 16): "EVP_aes_128_cfb128",
    ("aes-cfb128", 24): "EVP_aes_192_cfb128",
    ("aes-cfb128", 32): "EVP_aes_256_cfb128",
    ("des-ede3-cbc", 24): "EVP_des_ede3_cbc",
}
IV_SIZE = {"aes-cfb128": 16, "des-ede3-cbc": 8}
#: Bytes a block cipher may add on top of its input (none here: CFB is a stream, pysnmp pads for CBC).
SLACK = 32


class Libcrypto:
    """libcrypto's EVP cipher functions, from the library Python's ``ssl`` (or ``hashlib``) is linked with."""

    def __init__(self, library: ctypes.CDLL) -> None:
        void, integer, size = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)
        self._new = library.EVP_CIPHER_CTX_new
        self._new.restype, self._new.argtypes = void, []
        self._free = library.EVP_CIPHER_CTX_free
        self._free.restype, self._free.argtypes = None, [void]
        self._init = library.EVP_CipherInit_ex
        self._init.restype = integer
        self._init.argtypes = [void, void, void, ctypes.c_char_p, ctypes.c_char_p, integer]
        self._padding = library.EVP_CIPHER_CTX_set_padding
        self._padding.restype, self._padding.argtypes = integer, [void, integer]
        self._update = library.EVP_CipherUpdate
        self._update.restype = integer
        self._update.argtypes = [void, ctypes.c_char_p, size, ctypes.c_char_p, integer]
        self._final = library.EVP_CipherFinal_ex
        self._final.restype, self._final.argtypes = integer, [void, ctypes.c_char_p, size]
        self._ciphers: dict[str, int] = {}
        for name in EVP_CIPHERS.values():
            function = getattr(library, name)
            function.restype, function.argtypes = void, []
            self._ciphers[name] = function()

    def crypt(self, cipher: str, key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
        """``data`` encrypted or decrypted with ``cipher`` (``aes-cfb128``, ``des-ede3-cbc``), no padding."""
        evp = self._ciphers.get(EVP_CIPHERS.get((cipher, len(key)), ""))
        if evp is None:
            raise ValueError(f"invalid key size ({len(key) * 8}) for {cipher}")
        if len(iv) != IV_SIZE[cipher]:
            raise ValueError(f"invalid IV size ({len(iv)}) for {cipher}")
        context = self._new()
        if not context:
            raise MemoryError("libcrypto: no cipher context")
        try:
            out, tail = ctypes.create_string_buffer(len(data) + SLACK), ctypes.create_string_buffer(SLACK)
            written, more = ctypes.c_int(0), ctypes.c_int(0)
            if not (
                self._init(context, evp, None, key, iv, 1 if encrypt else 0)
                and self._padding(context, 0)
                and self._update(context, out, ctypes.byref(written), data, len(data))
                and self._final(context, tail, ctypes.byref(more))
            ):
                raise ValueError(f"libcrypto refused the {cipher} operation (length {len(data)})")
            return out.raw[: written.value] + tail.raw[: more.value]
        finally:
            self._free(context)


@dataclass
class _Operation:
    """One encryption or decryption: what ``update`` is given, transformed at ``finalize``."""

    run: Callable[[bytes], bytes]
    parts: list[bytes] = field(default_factory=list)

    def update(self, data: bytes) -> bytes:
        self.parts.append(bytes(data))
        return b""

    def finalize(self) -> bytes:
        return self.run(b"".join(self.parts))


@dataclass(frozen=True)
class Cipher:
    """What pysnmp's cipher modules use of ``cryptography``'s ``Cipher``: an encryptor and a decryptor."""

    crypto: Libcrypto
    name: str
    key: bytes
    iv: bytes

    def encryptor(self) -> _Operation:
        return _Operation(lambda data: self.crypto.crypt(self.name, self.key, self.iv, data, encrypt=True))

    def decryptor(self) -> _Operation:
        return _Operation(lambda data: self.crypto.crypt(self.name, self.key, self.iv, data, encrypt=False))


def makers(crypto: Libcrypto) -> dict[str, Callable[[bytes, bytes], Cipher]]:
    """pysnmp's cipher module -> its ``_cryptography_cipher(key, iv)``, as ``cryptography`` would make it."""
    return {
        # AES in 128-bit CFB, the AES of its key's length (RFC 3826; 192 and 256 bits use this module too).
        "pysnmp.proto.secmod.rfc3826.priv.aes": lambda key, iv: Cipher(crypto, "aes-cfb128", key, iv),
        # DES-CBC as triple DES with the key three times, exactly as pysnmp does it with cryptography.
        "pysnmp.proto.secmod.rfc3414.priv.des": lambda key, iv: Cipher(crypto, "des-ede3-cbc", key * 3, iv),
        "pysnmp.proto.secmod.eso.priv.des3": lambda key, iv: Cipher(crypto, "des-ede3-cbc", key, iv),
    }


def libcrypto() -> Libcrypto | None:
    """The EVP functions of the libcrypto already in the process, or None when they cannot be reached."""
    for name in ("_ssl", "_hashlib"):
        try:
            module = importlib.import_module(name)
            path = module.__file__
            if path is None:
                continue
            return Libcrypto(ctypes.CDLL(path))  # already loaded: dlopen hands back the same library
        except (ImportError, OSError, AttributeError):
            continue
    return None


_installed: list[bool] = []


def install() -> bool:
    """Give pysnmp its ciphers on libcrypto (once); False when pysnmp is left with ``cryptography``."""
    if not _installed:
        _installed.append(_install())
    return _installed[0]


def _install() -> bool:
    crypto = libcrypto()
    if crypto is None:
        log.debug("libcrypto's EVP functions not reachable: pysnmp uses cryptography for SNMPv3 privacy")
        return False
    held = "cryptography" not in sys.modules
    if held:
        sys.modules["cryptography"] = None  # type: ignore[assignment]  # import refused while pysnmp loads
    try:
        # The USM first: it imports the cipher modules in the order their own imports need.
        importlib.import_module("pysnmp.proto.secmod.rfc3414")
        modules = {name: importlib.import_module(name) for name in makers(crypto)}
    finally:
        if held:
            del sys.modules["cryptography"]
    if not all(hasattr(module, "_cryptography_cipher") for module in modules.values()):
        log.debug("pysnmp's cipher modules are not as expected: pysnmp uses cryptography for SNMPv3 privacy")
        for module in modules.values():
            importlib.reload(module)
        return False
    for name, maker in makers(crypto).items():
        setattr(modules[name], "_cryptography_cipher", maker)  # noqa: B010  (a module, not a typed object)
        setattr(modules[name], "PysnmpCryptoError", False)  # noqa: B010
    return True
