"""Sealing: the host's signed manifest over the whole session record.

The manifest holds a hash of each part of the record (metadata and policy, the document's
whole history, the integrity log and its head, receipts, runs, host-only data). Any later edit
of the file changes a hash; any truncation changes a count or the log head. `verify` recomputes
all of it.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from typing import Any

from .encoding import b64d, b64e, canonical_json, pack_signed, sha256_hex, unpack_signed
from .errors import AssessIQError
from .identity import Identity, verify_signature
from .integrity import genesis_hash
from .record import SessionRecord
from .store import SessionStore

__all__ = ["SEAL_DOMAIN", "compute_manifest", "host_key_of", "open_seal", "seal"]

SEAL_DOMAIN = "seal/v1"


def _updates_hash(record: SessionRecord) -> str:
    h = hashlib.sha256(b"assessiq/updates\n")
    for row in record.updates:
        origin = row.origin.encode("utf-8")
        h.update(struct.pack("<qdII", row.seq, row.t, len(origin), len(row.data)))
        h.update(origin)
        h.update(row.data)
    return h.hexdigest()


def compute_manifest(record: SessionRecord) -> dict[str, Any]:
    """The manifest a seal signs, recomputed from the record's content."""
    session = str(record.meta.get("session", ""))
    log_head = sha256_hex(record.envelopes[-1][1]) if record.envelopes else genesis_hash(session)
    return {
        "v": 1,
        "session": session,
        "meta": sha256_hex(canonical_json(record.meta)),  # all of it, the schema too
        "updates": {"count": len(record.updates), "hash": _updates_hash(record)},
        "log": {
            "count": len(record.envelopes), "head": log_head,
            "hash": sha256_hex(canonical_json([[t, sha256_hex(r)] for t, r in record.envelopes])),
        },
        "receipts": {"count": len(record.receipts),
                     "hash": sha256_hex(canonical_json([sha256_hex(r) for r in record.receipts]))},
        "runs": {"count": len(record.runs), "hash": sha256_hex(canonical_json(record.runs))},
        "private": {"count": len(record.private),
                    "hash": sha256_hex(canonical_json(record.private))},
        "refusals": {"count": len(record.refusals),
                     "refused": sum(int(r.get("count", 1)) for r in record.refusals),
                     "hash": sha256_hex(canonical_json(record.refusals))},
    }


def seal(store: SessionStore, host: Identity, *, now: float | None = None) -> dict[str, Any]:
    """Seal a session: sign the manifest with the host key and store it. Returns it."""
    meta = store.meta()
    if meta.get("host_key") != _key_text(host):
        raise AssessIQError("only the session's own host key can seal it")
    manifest = compute_manifest(SessionRecord.from_store(store))
    manifest["sealed_at"] = time.time() if now is None else now
    body = canonical_json(manifest)
    store.put_seal(pack_signed(body, host.sign(SEAL_DOMAIN, body)))
    return manifest


def _key_text(identity: Identity) -> str:
    return b64e(identity.public_key)


def open_seal(raw: bytes, host_key: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None) if the seal is signed by `host_key`, else (None, reason)."""
    try:
        body, signature = unpack_signed(raw)  # one encoding only: no altered-but-valid seal
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "the seal is damaged"
    if not isinstance(manifest, dict):
        return None, "the seal is damaged"
    if not verify_signature(host_key, signature, SEAL_DOMAIN, body):
        return None, "the seal's signature is not the host's"
    return manifest, None


def host_key_of(record: SessionRecord) -> bytes | None:
    value = record.meta.get("host_key")
    try:
        return b64d(value) if isinstance(value, str) else None
    except ValueError:
        return None
