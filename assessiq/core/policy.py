"""The escalation and score policy, read from TOML (defaults in `default_policy.toml`)."""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import PolicyError

__all__ = ["ACCOMMODATION_KINDS", "MAX_EXTRA_MINUTES", "Accommodations", "HeartbeatRule",
           "KindRule", "PasteRule", "Policy", "ResumeRule", "default_policy_text"]

MAX_PASTE_CHARS = 4000  # a signed envelope is at most 16 KiB


@dataclass(frozen=True)
class KindRule:
    """How one event kind escalates and scores (see the comments in the default policy)."""

    min_duration: float = 0.0
    warn_after: int = 1
    flag_after: int = 3
    flag_duration: float = 0.0
    weight: float = 1.0
    per_minute: float = 0.0
    max_penalty: float = 10.0

    def __post_init__(self) -> None:
        for name in ("min_duration", "flag_duration", "weight", "per_minute", "max_penalty"):
            if getattr(self, name) < 0:
                raise PolicyError(f"{name} must not be negative")
        if self.warn_after < 1 or self.flag_after < 1:
            raise PolicyError("warn_after and flag_after must be at least 1")


@dataclass(frozen=True)
class HeartbeatRule:
    max_gap: float = 20.0
    weight: float = 2.0
    max_penalty: float = 20.0

    def __post_init__(self) -> None:
        if self.max_gap <= 0 or self.weight < 0 or self.max_penalty < 0:
            raise PolicyError("heartbeats: max_gap must be positive, weights not negative")


@dataclass(frozen=True)
class ResumeRule:
    """How a restart of the candidate's app counts (see `[resume]` in the default policy and
    `core.resume`): its time away, measured on the host's clock, is free up to `grace`
    seconds for the first `free` restarts; any other restart costs `weight`, and every
    minute beyond `grace` costs `per_minute`; at most `max_penalty` in all. A restart of the
    host's app costs the candidate nothing: no heartbeat is due while it is down, nor for
    `reconnect` seconds after it is back (the candidate's app needs them to reconnect); after
    the candidate's restart too, its streams have `reconnect` seconds to beat again."""

    grace: float = 120.0
    free: int = 1
    weight: float = 2.0
    per_minute: float = 0.5
    max_penalty: float = 20.0
    reconnect: float = 30.0

    def __post_init__(self) -> None:
        for name in ("grace", "free", "weight", "per_minute", "max_penalty", "reconnect"):
            if getattr(self, name) < 0:
                raise PolicyError(f"{name} must not be negative")


@dataclass(frozen=True)
class PasteRule:
    """Whether a `paste` event carries the pasted text itself (capped), not only its size."""

    include_text: bool = False
    max_chars: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.include_text, bool):
            raise PolicyError("include_text must be true or false")
        if isinstance(self.max_chars, bool) or not isinstance(self.max_chars, int) \
                or not 1 <= self.max_chars <= MAX_PASTE_CHARS:
            raise PolicyError(f"max_chars must be a whole number from 1 to {MAX_PASTE_CHARS}")


ACCOMMODATION_KINDS = ("gaze.away", "head.turned")
"""The detectors an interviewer may turn off for a candidate (e.g. a candidate who reads with
a screen magnifier, or whose eyes or head move in ways the detectors would misread)."""
MAX_EXTRA_MINUTES = 240


@dataclass(frozen=True)
class Accommodations:
    """What the interviewer set for this candidate: detectors off (their events are not
    analysed or sent, and count for nothing) and extra minutes on the timer. Part of the
    policy, so it is sealed with the record and shown to the candidate before the interview."""

    off: tuple[str, ...] = ()
    extra_minutes: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.off, tuple) or not all(k in ACCOMMODATION_KINDS
                                                      for k in self.off):
            raise PolicyError(f"off lists detectors to turn off, of "
                              f"{', '.join(ACCOMMODATION_KINDS)}")
        if isinstance(self.extra_minutes, bool) or \
                not isinstance(self.extra_minutes, int | float) or \
                not 0 <= self.extra_minutes <= MAX_EXTRA_MINUTES:
            raise PolicyError(f"extra_minutes must be from 0 to {MAX_EXTRA_MINUTES}")

    @property
    def any(self) -> bool:
        return bool(self.off or self.extra_minutes)

    def words(self) -> list[str]:
        """One line each, as the candidate and the report read them."""
        names = {"gaze.away": "Gaze detection (eyes turned away) is off.",
                 "head.turned": "Head-pose detection (head turned away) is off."}
        out = [names[k] for k in self.off]
        if self.extra_minutes:
            out.append(f"{self.extra_minutes:g} extra minutes are added to the time.")
        return out

    def toml(self) -> str:
        off = ", ".join(f'"{k}"' for k in self.off)
        return (f"\n[accommodations]\n# set by the interviewer for this candidate\n"
                f"off = [{off}]\nextra_minutes = {self.extra_minutes:g}\n")


@dataclass(frozen=True)
class Policy:
    kinds: dict[str, KindRule]
    heartbeats: HeartbeatRule
    text: str
    paste: PasteRule = PasteRule()
    accommodations: Accommodations = Accommodations()
    resume: ResumeRule = ResumeRule()

    def rule(self, kind: str) -> KindRule | None:
        if kind in self.accommodations.off:  # turned off for this candidate: counts nothing
            return None
        return self.kinds.get(kind)

    def with_accommodations(self, accommodations: Accommodations) -> Policy:
        """This policy with the interviewer's accommodations for one session (its text gains
        an [accommodations] table; a policy file that already has one is refused, so the two
        never disagree)."""
        if not accommodations.any:
            return self
        if self.accommodations.any or "[accommodations]" in self.text:
            raise PolicyError("the policy file already sets [accommodations]; set them there "
                              "or on this page, not both")
        return Policy.from_toml(self.text.rstrip("\n") + "\n" + accommodations.toml())

    @classmethod
    def default(cls) -> Policy:
        return cls.from_toml(default_policy_text())

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            return cls.from_toml(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"cannot read policy {path}: {exc.strerror}") from exc

    @classmethod
    def from_toml(cls, text: str) -> Policy:
        """Parse a policy; `PolicyError` with a one-line reason. Parsed policies are cached
        by their exact text (a session's policy is re-read on every verify)."""
        return _parse_policy(text)


@functools.lru_cache(maxsize=16)
def _parse_policy(text: str) -> Policy:
    """The parse behind `Policy.from_toml`, cached by text (policies are frozen; treat the
    `kinds` mapping as read-only, as every caller does)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"the policy is not valid TOML: {exc}") from exc
    if data.get("version") != 1:
        raise PolicyError("the policy must say `version = 1`")
    tables = data.get("kinds") or {}
    if not isinstance(tables, dict):
        raise PolicyError("`kinds` must be a table of [kinds.\"<kind>\"] tables")
    kinds: dict[str, KindRule] = {}
    for kind, fields in tables.items():
        kinds[kind] = _build(KindRule, fields, f"kinds.{kind}")
    heartbeats = _build(HeartbeatRule, data.get("heartbeats") or {}, "heartbeats")
    resume = _build(ResumeRule, data.get("resume") or {}, "resume")
    return Policy(kinds=kinds, heartbeats=heartbeats, text=text, paste=_paste(data.get("paste")),
                  accommodations=_accommodations(data.get("accommodations")), resume=resume)


def _accommodations(fields: Any) -> Accommodations:
    if fields is None:
        return Accommodations()
    if not isinstance(fields, dict):
        raise PolicyError("[accommodations] must be a table")
    unknown = set(fields) - {"off", "extra_minutes"}
    if unknown:
        raise PolicyError(f"[accommodations]: unknown key {sorted(unknown)[0]!r} "
                          "(known: off, extra_minutes)")
    off = fields.get("off", [])
    if not isinstance(off, list) or not all(isinstance(k, str) for k in off):
        raise PolicyError("[accommodations]: off must be a list of detectors")
    try:
        return Accommodations(off=tuple(dict.fromkeys(off)),
                              extra_minutes=fields.get("extra_minutes", 0.0))
    except PolicyError as exc:
        raise PolicyError(f"[accommodations]: {exc}") from exc


def _paste(fields: Any) -> PasteRule:
    if fields is None:
        return PasteRule()
    if not isinstance(fields, dict):
        raise PolicyError("[paste] must be a table")
    unknown = set(fields) - {"include_text", "max_chars"}
    if unknown:
        raise PolicyError(f"[paste]: unknown key {sorted(unknown)[0]!r} "
                          "(known: include_text, max_chars)")
    try:
        return PasteRule(**fields)
    except PolicyError as exc:
        raise PolicyError(f"[paste]: {exc}") from exc


def _build(cls: type[Any], fields: Any, where: str) -> Any:
    if not isinstance(fields, dict):
        raise PolicyError(f"[{where}] must be a table")
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(f"[{where}] {name} must be a number")
        if not math.isfinite(value):
            raise PolicyError(f"[{where}] {name} must be a finite number")
        if name in ("warn_after", "flag_after", "free") and not isinstance(value, int):
            raise PolicyError(f"[{where}] {name} must be a whole number")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise PolicyError(f"[{where}]: {exc}") from exc
    except PolicyError as exc:
        raise PolicyError(f"[{where}]: {exc}") from exc


def default_policy_text() -> str:
    return resources.files("assessiq.core").joinpath("default_policy.toml").read_text("utf-8")
