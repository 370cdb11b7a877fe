"""The host's identity key file and fingerprints."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from assessiq.core.errors import AssessIQError
from assessiq.core.identity import (
    HOST_KEY_FILE,
    Identity,
    fingerprint,
    load_or_create_host_identity,
    verify_signature,
)

FP_RE = re.compile(r"^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$")


def test_created_0600_on_first_use_and_reloaded_the_same(tmp_path: Path) -> None:
    path = tmp_path / "host.pem"
    first = load_or_create_host_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_host_identity(path)
    assert again.public_key == first.public_key
    assert again.fingerprint == first.fingerprint
    # the reloaded key signs verifiably for the original public key
    assert verify_signature(first.public_key, again.sign("test/v1", b"hello"), "test/v1",
                            b"hello")


def test_default_location_is_the_data_dir(data_dir: str) -> None:
    ident = load_or_create_host_identity()
    path = Path(data_dir) / HOST_KEY_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_host_identity().public_key == ident.public_key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o700 | 0o004, 0o610])
def test_refused_when_group_or_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "host.pem"
    load_or_create_host_identity(path)
    path.chmod(mode)
    with pytest.raises(AssessIQError) as exc:
        load_or_create_host_identity(path)
    msg = str(exc.value)
    assert "chmod 600" in msg and "\n" not in msg
    path.chmod(0o600)
    load_or_create_host_identity(path)  # fixed as the message says: accepted again


def test_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    load_or_create_host_identity(real)
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(AssessIQError) as exc:
        load_or_create_host_identity(link)
    assert "\n" not in str(exc.value)
    # a dangling symlink is not followed to create a key elsewhere either
    target = tmp_path / "elsewhere.pem"
    dangling = tmp_path / "dangling.pem"
    dangling.symlink_to(target)
    with pytest.raises(AssessIQError):
        load_or_create_host_identity(dangling)
    assert not target.exists()


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_damaged_key_file_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "host.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(AssessIQError) as exc:
        load_or_create_host_identity(path)
    assert "\n" not in str(exc.value)


def test_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path = tmp_path / "host.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(AssessIQError, match="Ed25519"):
        load_or_create_host_identity(path)


def test_fingerprint_format_and_stability() -> None:
    key = bytes(range(32))
    fp = fingerprint(key)
    assert FP_RE.match(fp), fp
    assert fingerprint(key) == fp  # stable
    ids = [Identity.generate() for _ in range(50)]
    fps = {i.fingerprint for i in ids}
    assert len(fps) == 50 and all(FP_RE.match(f) for f in fps)
    assert fingerprint(key[:-1] + b"\x00") != fp


def test_fingerprint_known_answer() -> None:
    import base64
    import hashlib

    key = b"\x01" * 32
    digest = hashlib.sha256(b"assessiq/fingerprint\n" + key).digest()[:10]
    text = base64.b32encode(digest).decode()
    assert fingerprint(key) == f"{text[:4]}-{text[4:8]}-{text[8:12]}-{text[12:]}"


def test_signatures_are_domain_separated() -> None:
    ident = Identity.generate()
    sig = ident.sign("invite/v1", b"body")
    assert verify_signature(ident.public_key, sig, "invite/v1", b"body")
    assert not verify_signature(ident.public_key, sig, "join/v1", b"body")
    assert not verify_signature(ident.public_key, sig, "invite/v1", b"body!")
    assert not verify_signature(Identity.generate().public_key, sig, "invite/v1", b"body")
    assert not verify_signature(ident.public_key, sig[:-1], "invite/v1", b"body")
    assert not verify_signature(ident.public_key[:31], sig, "invite/v1", b"body")
    # asked again (answered from the cache of verified signatures): the same answers
    assert verify_signature(ident.public_key, sig, "invite/v1", b"body")
    assert not verify_signature(ident.public_key, sig, "invite/v1", b"body!")


def test_pem_round_trip() -> None:
    ident = Identity.generate()
    assert Identity.from_pem(ident.to_pem()).public_key == ident.public_key
    assert ident.fingerprint in repr(ident)
