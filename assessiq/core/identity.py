"""Ed25519 identities: the host's long-lived key and the candidate's per-session device key."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .encoding import domain_bytes
from .errors import AssessIQError
from .paths import data_dir

__all__ = [
    "HOST_KEY_FILE",
    "Identity",
    "fingerprint",
    "load_or_create_host_identity",
    "verify_signature",
]

HOST_KEY_FILE = "host_identity.pem"
PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64


def fingerprint(public_key: bytes) -> str:
    """A short, human-comparable fingerprint: 80 bits of SHA-256 as four groups of base32.

    Read it aloud or compare it on screen: `K3QF-7ZPA-M2XD-R9TB` style.
    """
    digest = hashlib.sha256(b"assessiq/fingerprint\n" + public_key).digest()[:10]
    text = base64.b32encode(digest).decode("ascii")  # 16 chars, no padding for 10 bytes
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


# Verified (key, signature, message digest) -> result. Verifying a session re-checks every
# signature in it; re-verifying an unchanged record (replay, repeated `verify`, tests) then
# costs a hash instead of an Ed25519 verification. Keyed by the SHA-256 of the exact signed
# bytes, so any change to key, signature, domain or body is verified afresh. Bounded.
_VERIFIED: dict[tuple[bytes, bytes, bytes], bool] = {}
_VERIFIED_MAX = 8192


def verify_signature(public_key: bytes, signature: bytes, domain: str, body: bytes) -> bool:
    """Whether `signature` is `public_key`'s signature of `body` under `domain`."""
    if len(public_key) != PUBLIC_KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    message = domain_bytes(domain, bytes(body))
    key = (bytes(public_key), bytes(signature), hashlib.sha256(message).digest())
    known = _VERIFIED.get(key)
    if known is not None:
        return known
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        ok = False
    else:
        ok = True
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = ok
    return ok


class Identity:
    """An Ed25519 key pair that signs under a domain tag."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, domain: str, body: bytes) -> bytes:
        return self._private.sign(domain_bytes(domain, body))

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> Identity:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise AssessIQError("the identity key file is not a valid PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AssessIQError("the identity key file does not hold an Ed25519 key")
        return cls(key)

    def __repr__(self) -> str:
        return f"Identity({self.fingerprint})"


def load_or_create_host_identity(path: Path | None = None) -> Identity:
    """The host's long-lived key, created on first use with mode 0600.

    A key file that others can read is refused (like ssh does): fix it with `chmod 600`.
    """
    path = path or data_dir() / HOST_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        identity = Identity.generate()
        with os.fdopen(fd, "wb") as f:
            f.write(identity.to_pem())
            f.flush()
            os.fsync(f.fileno())
        return identity
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise AssessIQError(f"cannot open the host key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AssessIQError(
                f"the host key {path} is readable by other users; run `chmod 600 {path}`"
            )
        return Identity.from_pem(f.read())
