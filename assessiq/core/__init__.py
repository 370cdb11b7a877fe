"""The core: identity and invites, the shared document and its store, the integrity log,
policy and score, the seal and verification. It imports nothing from aiortc, NiceGUI,
mediapipe or zeroconf."""

from .channel import Channel, MemoryChannel, memory_pair
from .document import SharedDoc
from .errors import (
    AssessIQError,
    ChannelClosed,
    InviteError,
    PolicyError,
    RecordError,
    StoreError,
)
from .identity import Identity, fingerprint, load_or_create_host_identity
from .integrity import Envelope, EventSigner, IntegrityError, LogVerifier, Receipt, make_receipt
from .invite import Invite, JoinGate, JoinRequest, make_invite
from .policy import Policy
from .record import SessionRecord
from .score import Evaluation, evaluate
from .seal import seal
from .store import SessionStore
from .sync import DocSync
from .verify import Verdict, verify_record

__all__ = [
    "AssessIQError",
    "Channel",
    "ChannelClosed",
    "DocSync",
    "Envelope",
    "Evaluation",
    "EventSigner",
    "Identity",
    "IntegrityError",
    "Invite",
    "InviteError",
    "JoinGate",
    "JoinRequest",
    "LogVerifier",
    "MemoryChannel",
    "Policy",
    "PolicyError",
    "Receipt",
    "RecordError",
    "SessionRecord",
    "SessionStore",
    "SharedDoc",
    "StoreError",
    "Verdict",
    "evaluate",
    "fingerprint",
    "load_or_create_host_identity",
    "make_invite",
    "make_receipt",
    "memory_pair",
    "seal",
    "verify_record",
]
