"""The candidate's session as the pages see it: the checked invite, consent, the connection
with the call, the camera check that calibrates the proctor, runs asked of the host, browser
integrity signals (debounced per the policy, signed into the log) and the list of every event
sent about them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import AssessIQError, InviteError, PolicyError
from ..core.integrity import Envelope
from ..core.invite import Invite
from ..core.kinds import KINDS
from ..core.policy import Policy
from ..peer import Candidate, PeerConfig
from ..peer.runrequests import RunTicket
from .call import CallPlan
from .camera_check import CameraCheck
from .changes import Changes

__all__ = ["CANDIDATE_TOPICS", "MONITORED", "BrowserSignals", "CandidateController",
           "monitored", "read_session_policy"]

CANDIDATE_TOPICS = (
    "code", "problem", "public_tests", "language", "phase", "timer", "policy",  # the document
    "runs",             # a run requested or answered
    "connection",       # the link to the interviewer up or down
    "call",             # the call's devices reported a problem
    "events",           # an event signed about the candidate, or a receipt for one
    "refusals",         # something refused from the interviewer's app
    "refused_by_peer",  # the interviewer's app refused something of ours
    "run_refusals",     # a run asked for was refused (or a new one asked for)
    "camera",           # the camera check's status, or it finished
    "admission",        # another computer: waiting for the interviewer's decision, or decided
    "ended",            # the interviewer ended the session (or this side closed)
)
"""What `CandidateController.changes` emits (after joining), and what drives each."""

log = logging.getLogger(__name__)

# What the consent screen states. Keep it exact: it is a promise.
_CAMERA = [
    ("Your camera, analysed on this computer",
     "Face presence, more than one face, head turn and gaze direction, a covered or frozen "
     "camera. The analysis runs here; only the resulting events (like \"no face for 5 s\") "
     "are sent, never frames for analysis. The camera check's result (face found and "
     "calibrated, or no camera) is sent once, before the interview."),
    ("Your camera and microphone, sent to the interviewer",
     "Live video and audio go directly to the interviewer's computer, encrypted (WebRTC), "
     "like any video call. Nothing is recorded by AssessIQ."),
    ("This browser tab",
     "Switching away from the tab, the window losing focus, leaving fullscreen, "
     "developer-tools shortcuts, and whether the browser reports more than one screen."),
]
_CODE = ("Your code",
         "Everything typed in the shared editor, with its timing, is shared with the "
         "interviewer and kept in the session record, like a shared document's history.")
PASTE_UNKNOWN = (
    "The size of anything pasted into the editor or copied from the page — never its text, "
    "unless the interviewer's policy asks for the pasted text: you are then told after "
    "joining and asked again before the interview starts, and no pasted text is sent "
    "until you agree.")
PASTE_SIZE_ONLY = ("The size of anything pasted into the editor or copied from the page — "
                   "never its text.")


def paste_text_words(max_chars: int) -> str:
    return (f"This interviewer's policy records the TEXT of anything you paste into the "
            f"editor (its first {max_chars} characters), not only its size. It is signed "
            "into the log and sent to the interviewer. Copying from the page still sends "
            "only its size.")


def monitored(policy: Policy | None) -> list[tuple[str, str]]:
    """What the consent screen states: with `policy` None (not known before joining) the
    pasted text is promised to be asked about again; with the session's policy, exactly
    what it records."""
    if policy is None:
        paste = PASTE_UNKNOWN
    elif policy.paste.include_text:
        paste = paste_text_words(policy.paste.max_chars)
    else:
        paste = PASTE_SIZE_ONLY
    return [*_CAMERA, ("Copy and paste", paste), _CODE]


MONITORED = monitored(None)

BROWSER_KINDS = ("tab.hidden", "window.blur", "fullscreen.exit", "paste", "copy",
                 "devtools.shortcut", "screens.multiple")
_INSTANT_GAP = 1.0  # at most one instant event of a kind per second (a held key, a burst)
_MAX_PASTE_JSON = 8 * 1024  # the pasted text's JSON in a signed event (envelopes: 16 KiB)


@dataclass
class _Open:
    started: float
    sent: bool = False


@dataclass
class BrowserSignals:
    """Turns raw page signals into integrity events, debounced per the policy.

    A condition (tab hidden, window blurred, fullscreen left) is sent as "start" only once it
    has lasted the policy's `min_duration`, and as "end" when it clears; a blip shorter than
    that is not sent at all. Instant signals are sent at most once a second per kind.
    """

    policy: Policy
    open: dict[str, _Open] = field(default_factory=dict)
    last_instant: dict[str, float] = field(default_factory=dict)

    def min_duration(self, kind: str) -> float:
        rule = self.policy.rule(kind)
        return rule.min_duration if rule else 0.0

    def begin(self, kind: str, now: float) -> None:
        self.open.setdefault(kind, _Open(now))

    def due(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Conditions that have now lasted long enough to be sent as "start"."""
        out = []
        for kind, cond in self.open.items():
            if not cond.sent and now - cond.started >= self.min_duration(kind):
                cond.sent = True
                out.append((kind, {"phase": "start", "start": cond.started, "confidence": 1.0}))
        return out

    def finish(self, kind: str, now: float) -> list[tuple[str, dict[str, Any]]]:
        cond = self.open.pop(kind, None)
        if cond is None:
            return []
        out = []
        if not cond.sent and now - cond.started >= self.min_duration(kind):
            out.append((kind, {"phase": "start", "start": cond.started, "confidence": 1.0}))
            cond.sent = True
        if cond.sent:
            out.append((kind, {"phase": "end", "start": cond.started, "end": now,
                               "duration": round(now - cond.started, 3), "confidence": 1.0}))
        return out

    def instant(self, kind: str, data: dict[str, Any], now: float
                ) -> list[tuple[str, dict[str, Any]]]:
        if now - self.last_instant.get(kind, 0.0) < _INSTANT_GAP:
            return []
        self.last_instant[kind] = now
        return [(kind, {"phase": "instant", **data})]


def read_session_policy(text: str) -> tuple[Policy, str]:
    """The session's policy from the text the host shared, and "" — or, when the text does
    not parse, the documented defaults and a note for the page (logged). Not refused: the
    candidate cannot fix the host's policy, the defaults are what they agreed to, and the
    interviewer's app scores by its own copy of the policy in any case."""
    try:
        policy = Policy.from_toml(text)
    except PolicyError as exc:
        log.warning("the session's policy cannot be read (%s); using the defaults", exc)
        return Policy.default(), ("The interviewer's policy could not be read on this "
                                  f"computer ({exc}); this page warns you by the documented "
                                  "defaults.")
    log.info("using the session's policy (%d kinds)", len(policy.kinds))
    return policy, ""


def _int(value: Any, limit: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, min(int(value), limit))


class CandidateController:
    """One candidate's side: built from an invite (checked at once), connected on consent."""

    def __init__(self, invite_text: str, *, name: str | None = None,
                 config: PeerConfig | None = None, signaling: str | None = None,
                 call: CallPlan | None = None) -> None:
        self.invite: Invite = _checked_invite(invite_text)  # InviteError: a one-line reason
        self.invite_text = invite_text
        self.name = name
        self.config = config
        self.signaling = signaling
        self.call = call  # the media for the call (None: no audio/video)
        self.consented_at: float | None = None  # when they agreed on the consent screen
        self.camera_check: CameraCheck | None = None
        self.candidate: Candidate | None = None
        # The session's policy arrives with the shared document after joining; until then
        # (and if it cannot be read) the documented defaults apply, and `policy_note` says so.
        self.signals = BrowserSignals(Policy.default())
        self.policy_source = "default"  # "session" once the host's policy is in use
        self.policy_note = ""
        self._policy_text: str | None = None
        self.paste_text_agreed = False  # the candidate agreed to send pasted text
        self.pending_local: list[tuple[float, str]] = []  # warnings shown before connecting
        self.changes = Changes()
        """The page's change events (`CANDIDATE_TOPICS`), from the document's observers, the
        peer's hooks and this controller's own actions (from joining on): nothing is
        polled."""
        self._unwatch: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._due: dict[str, asyncio.TimerHandle] = {}  # a condition's moment to be sent
        self.awaiting_admission = False
        """This computer is not the one that joined first (that one died, or its session
        file was lost): the interviewer is asked whether to admit it ("admission")."""

    @property
    def policy(self) -> Policy:
        """The policy this side debounces and warns by: the session's (from the shared
        document), or the defaults while there is none or it cannot be read."""
        self.refresh_policy()
        return self.signals.policy

    def refresh_policy(self) -> None:
        """Take the session's policy from the shared document when it arrives or changes
        (text that does not parse: the defaults, see `read_session_policy`)."""
        doc = self.doc
        text = doc.policy_text if doc is not None else None
        if text is None or text == self._policy_text:
            return
        self._policy_text = text
        self.signals.policy, self.policy_note = read_session_policy(text)
        self.policy_source = "default" if self.policy_note else "session"
        if self.candidate is not None:  # detectors turned off for this candidate
            self.candidate.silenced = frozenset(self.signals.policy.accommodations.off)

    @property
    def paste_text_needs_consent(self) -> bool:
        return self.policy.paste.include_text and not self.paste_text_agreed

    async def wait_for_policy(self, timeout: float = 10.0) -> None:
        """After joining: wait (bounded) for the host's policy to arrive with the document
        (its "policy" change event, or the end)."""
        if self.doc is not None and self.doc.policy_text is None and not self.ended:
            arrived = asyncio.Event()
            off = self.changes.on(("policy", "ended"), arrived.set)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), timeout)
            finally:
                off()
        self.refresh_policy()
        if self.doc is not None and self.doc.policy_text is None and not self.policy_note:
            log.warning("the host shared no policy; using the defaults")
            self.policy_note = ("The interviewer's app did not share its policy; this page "
                                "warns you by the documented defaults.")

    @property
    def host_fingerprint(self) -> str:
        return self.invite.host_fingerprint

    @property
    def connected(self) -> bool:
        return self.candidate is not None and self.candidate.is_connected

    @property
    def ended(self) -> bool:
        return self.candidate is not None and self.candidate.ended.is_set()

    @property
    def doc(self) -> Any:
        return self.candidate.doc if self.candidate else None

    @property
    def resumed(self) -> dict[str, Any] | None:
        """This app's restart (`{at, away_s}`: it continued an unfinished interview of this
        invite on this computer), None when it joined afresh."""
        cand = self.candidate
        if cand is None or cand.resumed_from is None or cand.resumed_at is None:
            return None
        return {"at": cand.resumed_at, "away_s": cand.away_s or 0.0}

    @property
    def sent(self) -> list[Envelope]:
        """Every event signed about this candidate, in order (the transparency panel)."""
        return self.candidate.log if self.candidate else []

    @property
    def receipted(self) -> int:
        return len(self.candidate.receipts) if self.candidate else 0

    def consent(self) -> None:
        """The candidate agreed (on the consent screen, in this run of the app)."""
        if self.consented_at is None:
            self.consented_at = time.time()

    @property
    def consented(self) -> bool:
        return self.consented_at is not None

    async def connect(self, *, timeout: float = 30.0) -> None:
        """Join the session (after consent). Raises `AssessIQError` with a one-line reason."""
        if self.candidate is not None:
            return
        if self.consented_at is None:  # the pages ask first; this is the last line of defence
            raise AssessIQError("you have not agreed to the monitoring yet: read the consent "
                                "screen and agree first")
        if self.call is not None:
            self.call.restart_scenes()  # a planted timeline runs from the moment of joining
        self.awaiting_admission = False  # (a wait that ended in a refusal says nothing more)

        def joining(what: str) -> None:  # (told from the start, before `attach`)
            if what == "admission":  # the first says waiting, the next decided
                self.awaiting_admission = not self.awaiting_admission
            self.changes.emit(what)

        try:
            joined = await Candidate.join(
                self.invite, name=self.name, config=self.config, signaling=self.signaling,
                timeout=timeout, media=self.call.config if self.call is not None else None,
                listeners=[joining])
        finally:
            if self.awaiting_admission:  # refused, or given up: not waiting any more
                self.awaiting_admission = False
                self.changes.emit("admission")
        self.attach(joined)
        assert self.candidate is not None
        if self.call is not None and self.call.synthetic:
            from .call import SYNTHETIC_EVENT

            await self.candidate.send_event("session.note",
                                            {"phase": "instant", "text": SYNTHETIC_EVENT})
        await self.wait_for_policy()

    def attach(self, candidate: Candidate) -> None:
        """Use `candidate` (joined, or resumed) as this side's session, and connect the
        sources of `changes` to it: its document's observers, its hooks, its end."""
        self.unwatch()
        self.candidate = candidate
        emit = self.changes.emit
        doc = candidate.doc

        def on_part(part: str, _update: bytes, _origin: str | None) -> None:
            if part == "code":
                emit("code")

        def unlisten() -> None:
            if emit in candidate.listeners:
                candidate.listeners.remove(emit)

        async def ended() -> None:
            await candidate.ended.wait()
            emit("ended")

        task = asyncio.ensure_future(ended())

        def stop_waiting() -> None:
            task.cancel()

        candidate.listeners.append(emit)
        self._unwatch = [doc.observe_state(lambda names: emit(*names)),
                         doc.observe_part_updates(on_part), unlisten, stop_waiting,
                         self.changes.on("policy", self.refresh_policy)]
        if self.camera_check is not None:
            self.camera_check.changed = lambda: emit("camera")

    def unwatch(self) -> None:
        """Stop listening to the session (closed, or another one attached)."""
        while self._unwatch:
            self._unwatch.pop()()
        while self._due:
            self._due.popitem()[1].cancel()

    def check_camera(self) -> CameraCheck | None:
        """Start (once) the camera check: calibration on the call's frames, then the
        proctor for the interview."""
        if self.candidate is None:
            return None
        if self.camera_check is None:
            self.camera_check = CameraCheck(self.candidate)
            self.camera_check.changed = lambda: self.changes.emit("camera")
            self.camera_check.start()
            self.changes.emit("camera")
        return self.camera_check

    async def send(self, kind: str, data: dict[str, Any]) -> Envelope | None:
        if self.candidate is None or self.candidate.ended.is_set():
            return None  # not joined yet, or the interview is over: nothing to sign
        severity = "warn" if kind in BROWSER_KINDS and data.get("phase") in (
            "start", "instant") else "info"
        return await self.candidate.send_event(kind, data, severity=severity)

    async def on_signal(self, raw: Any, now: float | None = None) -> list[Envelope]:
        """One signal from the page's script: `{"kind": ..., "state": "on"|"off"|"instant",
        ...}`. Unknown or malformed signals are ignored (logged)."""
        now = time.time() if now is None else now
        if not isinstance(raw, dict) or raw.get("kind") not in BROWSER_KINDS:
            log.warning("ignored a malformed browser signal")
            return []
        self.refresh_policy()
        kind, state = str(raw["kind"]), raw.get("state")
        if state == "on":
            self.signals.begin(kind, now)
            batch = self.signals.due(now)
            self._send_when_due(kind)
        elif state == "off":
            batch = self.signals.finish(kind, now)
        elif state == "instant":
            data: dict[str, Any] = {}
            if kind in ("paste", "copy"):
                data["chars"] = _int(raw.get("chars"))
            if kind == "paste":
                data.update(self._paste_text(raw.get("text"), data["chars"]))
            elif kind == "devtools.shortcut":
                data["key"] = str(raw.get("key", ""))[:32]
            elif kind == "screens.multiple":
                data["n"] = _int(raw.get("n"), 64)
            batch = self.signals.instant(kind, data, now)
        else:
            return []
        return [e for e in [await self.send(k, d) for k, d in batch] if e is not None]

    def _send_when_due(self, kind: str) -> None:
        """A condition that began and is not sent yet is sent (by `tick`) the moment it has
        lasted the policy's minimum: a timer for that moment, not a poll."""
        cond = self.signals.open.get(kind)
        if cond is None or cond.sent:
            return
        wait = max(0.0, cond.started + self.signals.min_duration(kind) - time.time())

        def fire() -> None:
            task = asyncio.ensure_future(self.tick())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        old = self._due.pop(kind, None)
        if old is not None:
            old.cancel()
        self._due[kind] = asyncio.get_running_loop().call_later(wait + 0.01, fire)

    async def tick(self, now: float | None = None) -> list[Envelope]:
        """Send conditions that have lasted long enough (`on_signal` arranges a call at the
        moment one is due; calling it more often does no harm)."""
        now = time.time() if now is None else now
        self.refresh_policy()
        return [e for e in [await self.send(k, d) for k, d in self.signals.due(now)]
                if e is not None]

    def _paste_text(self, text: Any, chars: int) -> dict[str, Any]:
        """The pasted text for the event: only when the session's policy asks for it AND
        the candidate agreed; capped at the policy's `max_chars` and so that the signed
        event stays well under its size limit."""
        rule = self.policy.paste
        if not (rule.include_text and self.paste_text_agreed) or not isinstance(text, str):
            return {}
        text = text.encode("utf-8", "ignore").decode("utf-8")  # drop lone surrogates
        kept = text[:rule.max_chars]
        while len(json.dumps(kept)) > _MAX_PASTE_JSON:
            kept = kept[:len(kept) * 3 // 4]
        utf16 = len(kept.encode("utf-16-le")) // 2  # `chars` counts as the browser does
        return {"text": kept, "truncated": len(kept) < len(text) or chars > utf16}

    async def heartbeat(self) -> None:
        await self.send("browser.heartbeat", {"phase": "instant"})

    async def request_run(self, stdin: str = "") -> RunTicket | None:
        """Ask the host to run the current shared code, with `stdin` for a console run (its
        limits apply; a refusal comes back with its reason in the ticket and in
        `run_refusals`)."""
        if self.candidate is None:
            return None
        try:
            return await self.candidate.request_run(stdin=stdin)
        finally:
            self.changes.emit("run_refusals")  # a new ticket: the last refusal is old news

    @property
    def refused_by_peer(self) -> list[dict[str, Any]]:
        """What the interviewer's app said it refused from this app (e.g. an edit past the
        document's size cap), latest last."""
        return list(self.candidate.refused_by_peer) if self.candidate is not None else []

    @property
    def run_refusals(self) -> list[str]:
        return self.candidate.run_refusals if self.candidate is not None else []

    async def close(self) -> None:
        if self.camera_check is not None:
            self.camera_check.cancel()
        if self.candidate is not None:
            await self.candidate.close()
        self.changes.emit("ended")
        self.unwatch()


def describe(env: Envelope) -> str:
    """One kind sentence about an event, for the candidate's transparency panel."""
    info = KINDS.get(env.kind)
    what = info.meaning if info else env.kind
    phase = env.data.get("phase")
    if phase == "start":
        return f"{what} (started)"
    if phase == "end":
        return f"{what} — ended after {float(env.data.get('duration', 0)):.1f} s"
    extra = ""
    if env.kind == "camera.check" and isinstance(env.data.get("text"), str):
        extra = f": {env.data['text']}"
    elif "chars" in env.data and isinstance(env.data.get("text"), str):
        extra = f" ({env.data['chars']} characters; the text was sent, as the policy asks)"
    elif "chars" in env.data:
        extra = f" ({env.data['chars']} characters; the text itself is not sent)"
    return what + extra


def _checked_invite(text: str) -> Invite:
    """The invite, checked (`Invite.decode`); one that expired still opens the unfinished
    session this computer joined with it (the app died), as `Candidate.join` continues it."""
    try:
        return Invite.decode(text)
    except InviteError:
        from ..peer.candidate import decode_for_resume, find_resumable

        try:
            lenient = decode_for_resume(text)
        except InviteError:
            pass
        else:
            if find_resumable(lenient) is not None:
                return lenient
        raise
