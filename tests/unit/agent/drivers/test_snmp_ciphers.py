"""SNMPv3 privacy on libcrypto: the bytes pysnmp's ciphers give on ``cryptography``, without importing it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers import algorithms as old_algorithms
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.drivers.snmp import ciphers

ROOT = Path(__file__).resolve().parents[4]
DATA = bytes(range(256)) * 3  # 768 bytes: a multiple of both block sizes, as pysnmp pads DES


def libcrypto() -> ciphers.Libcrypto:
    found = ciphers.libcrypto()
    assert found is not None, "Python's ssl module is linked with libcrypto here"
    return found


def through(cipher: ciphers.Cipher, data: bytes, *, encrypt: bool) -> bytes:
    operation = cipher.encryptor() if encrypt else cipher.decryptor()
    return operation.update(data[:100]) + operation.update(data[100:]) + operation.finalize()


def test_aes_cfb128_gives_the_nist_test_vector() -> None:
    # NIST SP 800-38A, F.3.13 (CFB128-AES128.Encrypt), first block.
    cipher = ciphers.makers(libcrypto())["pysnmp.proto.secmod.rfc3826.priv.aes"](
        bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"), bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    )
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert through(cipher, plain, encrypt=True).hex() == "3b3fd92eb72dad20333449f8e83cfb4a"


@pytest.mark.parametrize("size", [16, 24, 32])
def test_aes_encrypts_and_decrypts_as_cryptography_does(size: int) -> None:
    key, iv = os.urandom(size), os.urandom(16)
    cipher = ciphers.makers(libcrypto())["pysnmp.proto.secmod.rfc3826.priv.aes"](key, iv)
    reference = Cipher(algorithms.AES(key), CFB(iv))
    encrypted = through(cipher, DATA, encrypt=True)
    assert encrypted == reference.encryptor().update(DATA)
    assert through(cipher, encrypted, encrypt=False) == DATA


def test_des_is_triple_des_with_the_key_three_times_as_pysnmp_does_it() -> None:
    key, iv = os.urandom(8), os.urandom(8)
    cipher = ciphers.makers(libcrypto())["pysnmp.proto.secmod.rfc3414.priv.des"](key, iv)
    reference = Cipher(old_algorithms.TripleDES(key * 3), modes.CBC(iv))
    encrypted = through(cipher, DATA, encrypt=True)
    assert encrypted == reference.encryptor().update(DATA)
    assert through(cipher, encrypted, encrypt=False) == DATA


def test_triple_des_encrypts_as_cryptography_does() -> None:
    key, iv = os.urandom(24), os.urandom(8)
    cipher = ciphers.makers(libcrypto())["pysnmp.proto.secmod.eso.priv.des3"](key, iv)
    reference = Cipher(old_algorithms.TripleDES(key), modes.CBC(iv))
    assert through(cipher, DATA, encrypt=True) == reference.encryptor().update(DATA)


def test_a_key_of_the_wrong_size_is_refused_before_libcrypto_reads_it() -> None:
    cipher = ciphers.makers(libcrypto())["pysnmp.proto.secmod.rfc3826.priv.aes"](bytes(15), bytes(16))
    with pytest.raises(ValueError, match="key size"):
        through(cipher, DATA, encrypt=True)


def test_every_privacy_protocol_of_pysnmp_round_trips_on_libcrypto() -> None:
    assert ciphers.install()
    from pyasn1.type.univ import OctetString
    from pysnmp.proto.secmod.rfc3414.priv.nopriv import NoPriv
    from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel

    message = b"a scoped PDU of a get request"
    for service_id, service in SnmpUSMSecurityModel.PRIV_SERVICES.items():
        if isinstance(service, NoPriv):
            continue
        key = OctetString(os.urandom(32))  # a localized key, as the USM hands it over
        encrypted, salt = service.encrypt_data(key, (7, 1234, None), message)
        assert bytes(encrypted) != message.ljust(len(bytes(encrypted)), b"\0"), service_id
        decrypted = service.decrypt_data(key, (7, 1234, salt), encrypted)
        assert bytes(decrypted)[: len(message)] == message, service_id


def test_an_snmp_v3_session_with_privacy_leaves_cryptography_unimported() -> None:
    code = (
        "import sys\n"
        "from agent.drivers.snmp import SnmpOptions\n"
        "from agent.drivers.snmp.session import auth_data\n"
        "options = SnmpOptions.model_validate({'driver': 'snmp', 'host': '192.0.2.2', 'version': '3',"
        " 'user': 'hezo', 'auth_protocol': 'sha', 'auth_key': 'auth-key-1', 'priv_protocol': 'aes',"
        " 'priv_key': 'priv-key-1', 'if_index': 5})\n"
        "auth_data(options)\n"
        "import pysnmp.hlapi.v3arch.asyncio\n"
        "from pysnmp.proto.secmod.rfc3826.priv import aes\n"
        "print(aes.PysnmpCryptoError, sorted(m for m in sys.modules if m.startswith('cryptography')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False []"
