"""Restarts in the record: what a session file says when either side's app died and came back.

A restart is never hidden. Each side records its own, with how long it was gone and how it
knows:

- **The candidate's app** signs a `session.resumed` event (`resumed_data`) into its own hash
  chain, like any other event: the host verifies, stores and receipts it. Its `away_s` and
  `last_seen` are the app's claims; the policy counts the candidate's time away from when the
  host *received* its events (the silence the restart closes), never from the claim.
- **The host's app** appends a host-only entry of kind `session.resumed` holding a body signed
  with the host's key (`record_host_resume`), and adds `[last_seen, at]` to the metadata's
  `host_restarts`, which the evaluation reads (the live page and `verify` pass the same
  metadata): while the host was down nothing could arrive, so that time never counts
  against the candidate. Both parts are sealed (the manifest hashes the metadata and the
  host-only entries); `verify` checks each entry's signature and that the two agree.

`last_alive` is how a restarted side knows when it was last alive: the newest moment its own
session file proves it was writing. `restarts` lists every restart of either side, oldest
first, for `verify` and the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import AssessIQError
from .hostentry import finite, open_entry, sign_entry

if TYPE_CHECKING:
    from .identity import Identity
    from .integrity import Envelope
    from .record import SessionRecord
    from .store import SessionStore

__all__ = [
    "HOST_RESTARTS_KEY",
    "MAX_AWAY_S",
    "RESUMED",
    "RESUME_DOMAIN",
    "Restart",
    "away_words",
    "data_problem",
    "describe",
    "host_windows",
    "last_alive",
    "record_host_resume",
    "restarts",
    "resumed_data",
    "windows_problem",
]

RESUMED = "session.resumed"
"""The event kind (candidate) and host-only entry kind (host) of a restart."""
RESUME_DOMAIN = "resume/v1"
"""The signature domain of the host's restart entries (never valid as any other signature)."""
HOST_RESTARTS_KEY = "host_restarts"
"""Metadata key: `[[last_seen, at], ...]`, one pair per host restart, on the host's clock."""
SIDES = ("host", "candidate")
MAX_AWAY_S = 7 * 24 * 3600.0
"""The longest time away a restart may claim (a week): anything longer is not a resumed
interview but a damaged or hostile claim."""
MAX_WHY_CHARS = 200
CLOCK_TOLERANCE_S = 1.0
"""How far `last_seen` may be after the restart's own time (the store rounds update times to
10 ms; a whole second covers it): more is a claim from the future."""


def last_alive(store: SessionStore) -> float:
    """The newest moment `store`'s own file proves its side was alive: the newest update,
    envelope arrival, run, host-only entry or refusal it wrote, the links it recorded opening,
    and its creation (`meta['created']`, `joined`). Receipts are not counted: their time is
    the host's clock, and on the host each one is written with its envelope, whose arrival
    time is counted. `AssessIQError` when the file records no time at all."""
    times: list[float] = []
    newest = store.newest_time()
    if newest is not None:
        times.append(newest)
    meta = store.meta()
    links = meta.get("links_opened")
    for value in [meta.get("created"), meta.get("joined"),
                  *(links if isinstance(links, list) else [])]:
        t = finite(value)
        if t is not None:
            times.append(t)
    best = max((t for t in times if math.isfinite(t)), default=None)
    if best is None:
        raise AssessIQError(f"{store.path}: the session file records no time at all")
    return best


def data_problem(data: Any, *, side: str | None = None, t: float | None = None) -> str | None:
    """Why `data` is not a well-formed restart claim (None when it is): `side` one of
    "host"/"candidate" (and the expected one, when given), `away_s` a finite number from 0 to
    `MAX_AWAY_S`, `last_seen` a finite time not after `t` (the restart's own time, when
    given), `why` a short non-empty text."""
    if not isinstance(data, dict):
        return "not a table of fields"
    who = data.get("side")
    if who not in SIDES:
        return f"side must be \"host\" or \"candidate\", not {str(who)[:20]!r}"
    if side is not None and who != side:
        return f"says it is the {who}'s restart, but the {side} recorded it"
    away = finite(data.get("away_s"))
    if away is None or not 0.0 <= away <= MAX_AWAY_S:
        return f"away_s must be a number of seconds from 0 to {MAX_AWAY_S:.0f}"
    seen = finite(data.get("last_seen"))
    if seen is None or seen < 0:
        return "last_seen must be a time (epoch seconds)"
    if t is not None and seen > t + CLOCK_TOLERANCE_S:
        return f"last_seen is {seen - t:.1f} s after the restart's own time"
    why = data.get("why")
    if not isinstance(why, str) or not why.strip() or len(why) > MAX_WHY_CHARS:
        return f"why must be a non-empty text of at most {MAX_WHY_CHARS} characters"
    return None


def resumed_data(*, side: str, away_s: float, last_seen: float, why: str) -> dict[str, Any]:
    """The `data` of a `session.resumed` event (the candidate's app signs it with
    `Candidate.emit`/`send_event`, as an instant kind: `phase: "instant"`). `ValueError` when
    the fields are not well formed (`data_problem`)."""
    data = {"phase": "instant", "side": side, "away_s": float(away_s),
            "last_seen": float(last_seen), "why": why}
    problem = data_problem(data)
    if problem:
        raise ValueError(f"session.resumed: {problem}")
    return data


def record_host_resume(store: SessionStore, identity: Identity, *, away_s: float,
                       last_seen: float, why: str, now: float | None = None) -> dict[str, Any]:
    """Record the host's own restart in its session file: a host-only entry of kind
    `session.resumed` holding `{"signed": <body>.<signature>}` (the body signed with the
    host's key under `RESUME_DOMAIN`), committed with fsync, and `[last_seen, at]` appended to
    the metadata's `host_restarts` (committed with it). Returns the entry's fields
    (`side, at, away_s, last_seen, why, signed`). `AssessIQError` when `identity` is not the
    session's host key or the fields are not well formed."""
    at = time.time() if now is None else float(now)
    fields = {"side": "host", "away_s": float(away_s), "last_seen": float(last_seen),
              "why": why}
    _, signed = sign_entry(store, identity, domain=RESUME_DOMAIN, kind=RESUMED, at=at,
                           fields=fields, what="record its restart")
    problem = data_problem(fields, side="host", t=at)
    if problem:
        raise AssessIQError(f"host restart: {problem}")
    meta = store.meta()
    # The metadata's windows are rebuilt from the signed entries each time (not appended to):
    # a kill between the two writes below, which are two commits, is mended by the next
    # restart instead of leaving a record whose windows contradict its entries for good.
    host_key = identity.public_key
    marks = [[r.last_seen, r.at] for r in
             (_host_entry(e, str(meta.get("session", "")), host_key)
              for e in store.private(RESUMED))
             if r.problem is None and r.last_seen is not None]
    # the metadata first: the entry's fsync then makes both durable
    store.set_meta(HOST_RESTARTS_KEY, [*marks, [fields["last_seen"], at]])
    store.add_private(RESUMED, {"signed": signed}, t=at)
    return {"at": at, **fields, "signed": signed}


@dataclass(frozen=True)
class Restart:
    """One restart as the record shows it. `at` is on the host's clock (a candidate's: when
    its event arrived). `away_s`, `last_seen` and `why` are what the side itself said (None
    when its claim is not a number); `signed` whether the signature checks (a candidate's
    event is in the verified log, so True). `problem` says why the entry or claim is not
    well formed (None when it is); `seq` is a candidate event's sequence number."""

    side: str
    at: float
    away_s: float | None
    last_seen: float | None
    why: str
    signed: bool
    problem: str | None = None
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _host_entry(entry: dict[str, Any], session: str, host_key: bytes | None) -> Restart:
    opened = open_entry(entry, domain=RESUME_DOMAIN, kind=RESUMED, session=session,
                        host_key=host_key, what="restart")
    t, data = opened.t, opened.data
    if data is None:
        return Restart("host", t, None, None, "", False, opened.problem)
    why = data.get("why")
    problem = opened.problem or data_problem(data, side="host", t=t)
    return Restart("host", t, finite(data.get("away_s")), finite(data.get("last_seen")),
                   why[:MAX_WHY_CHARS] if isinstance(why, str) else "", opened.signed, problem)


def _host_key(record: SessionRecord) -> bytes | None:
    from .encoding import b64d

    value = record.meta.get("host_key")
    try:
        key = b64d(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return key if key is not None and len(key) == 32 else None


def restarts(record: SessionRecord, events: Sequence[Envelope] = (),
             arrivals: Sequence[float] | None = None) -> list[Restart]:
    """Every restart of either side, oldest first: the host's signed entries in `record`
    (each checked against the record's host key), and the candidate's `session.resumed`
    events among `events` (the verified log; `arrivals[i]` when the host received
    `events[i]`, else their signed time is used)."""
    session = str(record.meta.get("session", ""))
    key = _host_key(record)
    if arrivals is not None and len(arrivals) != len(events):
        arrivals = None  # (not one per event: the signed times stand in)
    out = [_host_entry(p, session, key) for p in record.private if p.get("kind") == RESUMED]
    for i, env in enumerate(events):
        if env.kind != RESUMED:
            continue
        data = env.data
        why = data.get("why")
        out.append(Restart(
            "candidate", float(arrivals[i]) if arrivals is not None else env.t,
            finite(data.get("away_s")), finite(data.get("last_seen")),
            why[:MAX_WHY_CHARS] if isinstance(why, str) else "", True,
            data_problem(data, side="candidate", t=env.t), env.seq))
    out.sort(key=lambda r: (r.at, r.side != "host", r.seq or 0))
    return out


def host_windows(meta: dict[str, Any]) -> list[tuple[float, float]]:
    """The host's restarts as its metadata records them: `(last_seen, at)` on the host's
    clock, one per restart, well-formed pairs only (`verify` checks they match the signed
    entries)."""
    value = meta.get(HOST_RESTARTS_KEY)
    out: list[tuple[float, float]] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list) and len(item) == 2:
                seen, at = finite(item[0]), finite(item[1])
                if seen is not None and at is not None and seen <= at:
                    out.append((seen, at))
    return out


def windows_problem(record: SessionRecord, found: Sequence[Restart]) -> str | None:
    """Why the metadata's `host_restarts` disagrees with the host's signed restart entries
    (None when each signed entry is there, as signed, and nothing else)."""
    signed = [[r.last_seen, r.at] for r in found if r.side == "host" and r.problem is None]
    value = record.meta.get(HOST_RESTARTS_KEY)
    if value is None and not signed:
        return None
    if value != signed:
        return "the host's restarts in the metadata differ from its signed restart entries"
    return None


def describe(item: dict[str, Any], when: Callable[[float], str]) -> str:
    """One restart as `verify`'s JSON lists it (`Restart.to_json` with `measured_s` and
    `penalty`), in words: when (`when(at)`), whose, how long away, why, and whether it
    checks — for `assessiq verify` and the report alike."""
    who = "interviewer" if item["side"] == "host" else "candidate"
    claimed = "?" if item.get("away_s") is None else f"{item['away_s']:.0f} s"
    if item["side"] == "host":
        away = f"down {claimed}, signed by the host: {'ok' if item.get('signed') else 'NO'}"
    else:
        measured = item.get("measured_s")
        away = (f"away {measured:.0f} s on the interviewer's clock (it says {claimed})"
                if measured is not None else f"away {claimed} (its claim)")
        if item.get("penalty"):
            away += f", -{item['penalty']:g}"
    line = f"{when(item['at'])} {who} {away}; {item.get('why') or '-'}"
    if item.get("problem"):
        line += f"  [refused: {item['problem']}]"
    return line


def away_words(seconds: float) -> str:
    """`12 s`, `5 min`, `2 h 5 min`: how long an app was gone (or how long ago), in words."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
