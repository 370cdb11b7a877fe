"""Byte and JSON encodings shared by every signed structure.

Signatures always cover exact bytes that travel with them (never a re-serialisation), and each
kind of signature has its own domain prefix so a signature for one purpose can never be
replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

__all__ = [
    "b64d",
    "b64e",
    "canonical_json",
    "domain_bytes",
    "pack_signed",
    "sha256_hex",
    "unpack_signed",
]


def b64e(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode URL-safe base64 (padding optional); `ValueError` on anything else."""
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("not base64") from exc
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(*parts: bytes) -> str:
    """SHA-256 of the concatenation of `parts`, hex."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def domain_bytes(domain: str, body: bytes) -> bytes:
    """What a signature covers: a domain tag, a newline, then the exact body bytes."""
    return b"assessiq/" + domain.encode("ascii") + b"\n" + body


def pack_signed(body: bytes, signature: bytes) -> bytes:
    """The wire form of a signed JSON body: `<body>.<base64url signature>`."""
    return body + b"." + b64e(signature).encode("ascii")


def unpack_signed(raw: bytes) -> tuple[bytes, bytes]:
    """Split `pack_signed` output; `ValueError` when it is not of that form.

    Only the one canonical encoding is accepted: base64 has spare bits and optional padding,
    and a blob altered there must not pass as the same signed blob.
    """
    body, sep, sig_text = raw.rpartition(b".")
    if not sep or not body:
        raise ValueError("not a signed message")
    try:
        signature = b64d(sig_text.decode("ascii"))
    except UnicodeDecodeError as exc:
        raise ValueError("not a signed message") from exc
    if pack_signed(body, signature) != raw:
        raise ValueError("the signature is not in its one canonical encoding")
    return body, signature
