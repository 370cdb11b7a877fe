"""The interviewer's session as the pages see it: set up, admit, watch, run, note, end.

It wraps the peer layer's `Host` (the connection, the call, the document, the verified
integrity log, and the run service that executes every run — the interviewer's and the
candidate's — in the sandbox) and adds what the interviewer's screens need: private notes,
the hidden tests' results, the live evaluation (warnings, flags, score) and the export of the
sealed file and a readable report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AssessIQError
from ..core.integrity import Envelope
from ..core.policy import Policy
from ..core.provenance import code_clock, mark_generated
from ..core.record import SessionRecord
from ..core.score import Evaluation, evaluate_session
from ..core.verify import Verdict, verify_record
from ..peer import Host, PeerConfig
from ..runs import RunRefused
from .call import CallPlan
from .changes import Changes
from .problems import LANGUAGES, Problem, canonical_language, starter_for, switch_note
from .report import write_reports

__all__ = ["HOST_TOPICS", "HostController", "HostSetup", "describe_camera_check"]

HOST_TOPICS = (
    "code",             # the shared code (each edit, either side's)
    "problem", "public_tests", "language", "phase", "timer", "policy",  # the document's state
    "runs",             # a run requested or answered (and the hidden results with it)
    "connection",       # the candidate's link up or down (and who joined)
    "pending_device",   # another computer asks to continue as the candidate, or was decided
    "call",             # the call's devices reported a problem
    "events",           # a verified integrity event (the panel, the score, the camera check)
    "refusals",         # something refused from the candidate's app
    "refused_by_peer",  # the candidate's app refused something of ours
    "run_refusals",     # the interviewer's own Run was refused
    "notes",            # a private note added
    "ended",            # sealed (or the seal failed: `end()` raised)
)
"""What `HostController.changes` emits, and what drives each."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostSetup:
    """What the interviewer chose on the setup screen."""

    problem: Problem
    language: str = "python"
    duration_min: float = 45.0
    policy: Policy = field(default_factory=Policy.default)
    label: str = ""
    signaling: str | None = None  # None: a signaling server embedded on 127.0.0.1
    lan: bool = False
    lan_address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not 1 <= self.duration_min <= 600:
            raise ValueError("the duration must be between 1 and 600 minutes")


def describe_camera_check(data: dict[str, Any]) -> str:
    """The lobby's sentence for a `camera.check` event's data (as the candidate sent it)."""
    result = data.get("result")
    frames = data.get("frames")
    n = frames if isinstance(frames, int) and not isinstance(frames, bool) else 0
    if result == "calibrated":
        yaw, pitch = data.get("yaw"), data.get("pitch")
        pose = ""
        if isinstance(yaw, int | float) and isinstance(pitch, int | float):
            pose = f" (natural pose {yaw:+.0f}° sideways, {pitch:+.0f}° up/down)"
        return f"Camera check: face found, calibrated on {n} frames{pose}."
    if result == "not calibrated":
        return ("Camera check: no face seen steadily enough to calibrate; camera analysis "
                "runs and calibrates later.")
    if result == "no camera":
        return "Camera check: no camera — no camera analysis and no video from the candidate."
    return "Camera check: camera analysis cannot run on the candidate's computer."


@dataclass
class Ended:
    session_file: Path
    report_md: Path
    report_html: Path
    verdict: Verdict


class HostController:
    """One hosted interview. `await HostController.start(setup)`."""

    def __init__(self, setup: HostSetup, host: Host, server: Any,
                 call: CallPlan | None = None) -> None:
        self.setup = setup
        self.host = host
        self.call = call
        self._server = server
        self.notes: list[tuple[float, str]] = []
        self._meta: dict[str, Any] = {}  # the session file's metadata, as last read
        self.ended: Ended | None = None
        self.run_refusals: list[str] = []  # why the interviewer's own runs were refused
        self._score_saved = False
        self.sealed_path: Path | None = None  # set once the file is sealed
        self.changes = Changes()
        """The page's change events (`HOST_TOPICS`), from the document's observers, the
        peer's hooks and this controller's own actions: nothing is polled."""
        self._unwatch = self._watch()

    @classmethod
    async def start(cls, setup: HostSetup, *, config: PeerConfig | None = None,
                    call: CallPlan | None = None, run_backend: Any = None) -> HostController:
        """Open the session: signaling (embedded unless given), the call with `call`'s media
        (None: no call), and the run service with the problem's hidden tests."""
        from sandbox.testcases import TestCase as SandboxCase

        server = None
        signaling = setup.signaling
        if signaling is None and not setup.lan:
            from signaling import ServerConfig, SignalingServer

            server = SignalingServer(ServerConfig(host="127.0.0.1", port=0))
            await server.start()
            signaling = f"ws://127.0.0.1:{server.port}"
        hidden = [SandboxCase(name=t.name, stdin=t.stdin, expected_stdout=t.expected,
                              hidden=True) for t in setup.problem.hidden]
        try:
            host = await Host.start(
                signaling=signaling, lan=setup.lan, lan_address=setup.lan_address,
                config=config, label=setup.label or None, policy=setup.policy,
                media=call.config if call is not None else None, runs=True,
                hidden_tests=hidden, run_backend=run_backend,
                advertise_interfaces=[setup.lan_address] if setup.lan else None,
                # (a resume listens there again: the invite names it)
                embedded_signaling=("127.0.0.1", server.port) if server is not None else None)
        except BaseException:
            if server is not None:
                await server.stop()
            raise
        problem = setup.problem
        host.store.set_meta("problem", problem.title)
        # (Host.start keeps the hidden tests as a host-only entry.) What a restarted app needs
        # to show the same room (`resume`): the live table, emptied by the seal.
        host.store.set_live("setup", _setup_json(setup))
        doc = host.doc
        clock = code_clock(doc)
        with doc.transaction("host"):
            doc.set_problem(problem.statement, origin="host")
            doc.set_language(setup.language, origin="host")
            public = [t.to_json() for t in problem.public]
            if host.runs is not None:  # graded against the run service's own copy
                host.runs.set_public_tests(public)
            else:
                doc.set_public_tests(public, origin="host")
            doc.set_phase("lobby", origin="host")
            starter = starter_for(problem, setup.language)
            if starter and not doc.code_text:
                doc.set_code(starter, origin="host")
        mark_generated(host.store, doc, "starter", clock)  # the editor's text, not a person's
        return cls(setup, host, server, call)

    @classmethod
    async def resume(cls, path: Path, *, config: PeerConfig | None = None,
                     call: CallPlan | None = None, run_backend: Any = None) -> HostController:
        """Go on with an unsealed session after this app died (`Host.resume`: the document,
        the verified log, runs, hidden tests, the same room and invite; the restart is in the
        record). The setup, notes, phase and timer come back as they were: the timer is not
        restarted. `AssessIQError` (one line) when the file cannot be resumed."""
        host = await Host.resume(path, config=config,
                                 media=call.config if call is not None else None,
                                 run_backend=run_backend)
        try:
            setup = _setup_from(host)
        except BaseException:
            await host.close()
            raise
        controller = cls(setup, host, None, call)
        controller._score_saved = bool(host.store.private("score"))  # (killed in the seal)
        for row in host.store.private("note"):
            value = row.get("value")
            text = value.get("text") if isinstance(value, dict) else None
            if isinstance(text, str):
                controller.notes.append((float(row.get("t") or 0.0), text))
        return controller

    @property
    def pending_device(self) -> Any:
        """Another computer asking to continue as the candidate (`fingerprint`,
        `request.name`, `at`), until `admit_device` decides; None otherwise."""
        return self.host.pending_device

    async def admit_device(self, accept: bool, fingerprint: str | None = None) -> None:
        """The interviewer's decision on `pending_device` (both recorded in the session),
        for the device with `fingerprint` (the one the page showed): `HandshakeError` (one
        line) when another one waits by now, or none does any more."""
        await self.host.admit_device(accept, fingerprint=fingerprint)

    @property
    def resumed(self) -> dict[str, Any] | None:
        """This app's restart (`{at, away_s, last_seen, why}`), None unless resumed."""
        return self.host.resumed

    def _watch(self) -> list[Callable[[], None]]:
        """Connect the sources of `changes`; returns what disconnects them."""
        emit = self.changes.emit
        host = self.host

        def on_part(part: str, _update: bytes, _origin: str | None) -> None:
            if part == "code":
                emit("code")

        def unlisten() -> None:
            if emit in host.listeners:
                host.listeners.remove(emit)

        host.listeners.append(emit)
        return [host.doc.observe_state(lambda names: emit(*names)),
                host.doc.observe_part_updates(on_part), unlisten]

    def unwatch(self) -> None:
        """Stop listening to the document and the peer (the session is closed)."""
        while self._unwatch:
            self._unwatch.pop()()

    # --- state for the pages ------------------------------------------------------------
    @property
    def doc(self) -> Any:
        return self.host.doc

    @property
    def invite_text(self) -> str:
        return self.host.invite.encode()

    @property
    def invite_link(self) -> str | None:
        """The invite as a link that opens in any mail client: the signaling server's join
        page with the invite in the fragment (None without a web-reachable server)."""
        link: str | None = self.host.invite.web_link()
        return link

    @property
    def host_fingerprint(self) -> str:
        return self.host.identity.fingerprint

    @property
    def candidate_fingerprint(self) -> str | None:
        join = self.host.handshake.join
        return join.device_fingerprint if join is not None else None

    @property
    def candidate_name(self) -> str | None:
        join = self.host.handshake.join
        if join is not None:
            return join.name
        with contextlib.suppress(sqlite3.ProgrammingError):  # (resumed: as the file says)
            name = self.host.store.meta().get("candidate_name")
            return name if isinstance(name, str) and name else None
        return None

    @property
    def connected(self) -> bool:
        return self.host.is_connected

    @property
    def events(self) -> list[Envelope]:
        return self.host.events

    @property
    def camera_check(self) -> str | None:
        """The candidate's camera-check result (their signed, verified `camera.check`
        event) as a sentence for the lobby; None until it arrives."""
        for env in reversed(self.host.events):
            if env.kind == "camera.check":
                return describe_camera_check(env.data)
        return None

    @property
    def refusals(self) -> tuple[int, list[dict[str, Any]]]:
        """What the host refused from the candidate's app: (the total, the latest, oldest
        first; each {t, channel, reason, size}). All of them are in the session file."""
        return self.host.refused_total, list(self.host.refused)

    def evaluation(self, now: float | None = None) -> Evaluation:
        """The score as the sealed record will give it (`evaluate_session`, as `verify`)."""
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed once sealed: as last read
            self._meta = self.host.store.meta()
        return evaluate_session(self._meta, self.host.events, self.setup.policy,
                                arrivals=self.host.arrivals(),
                                end_t=time.time() if now is None else now)

    # --- actions ------------------------------------------------------------------------
    def add_note(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        now = time.time()
        self.notes.append((now, text))
        self.host.store.add_private("note", {"text": text}, t=now)
        self.changes.emit("notes")

    def set_phase(self, phase: str) -> None:
        doc = self.host.doc
        with doc.transaction("host"):
            doc.set_phase(phase, origin="host")  # type: ignore[arg-type]
            if phase == "interview" and doc.timer() is None:
                minutes = self.setup.duration_min + \
                    self.setup.policy.accommodations.extra_minutes  # (the accommodation's)
                doc.start_timer(minutes * 60, time.time(), origin="host")

    def switch_language(self, language: str) -> bool:
        """The interviewer switches the session's language (both sides see it; the state
        update and the editor's text are in the record). Untouched code (the old starter,
        or nothing) becomes the new language's starter; code someone wrote is kept, with a
        comment line above it saying what happened. The text the editor writes here is
        marked as the editor's (`mark_generated`), not counted as anyone's typing. Returns
        False when nothing changed; raises ValueError for a language the sandbox lacks."""
        language = canonical_language(language)
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r} (one of {', '.join(LANGUAGES)})")
        doc = self.host.doc
        old = doc.language or self.setup.language
        if language == canonical_language(old):
            return False
        before = code_clock(doc)
        code = doc.code_text
        with doc.transaction("host"):
            doc.set_language(language, origin="host")
            if not code.strip() or code == starter_for(self.setup.problem, old):
                doc.set_code(starter_for(self.setup.problem, language), origin="host")
            else:
                doc.insert_code(0, switch_note(old, language), origin="host")
        mark_generated(self.host.store, doc, "language switch", before)
        log.info("host: language switched from %s to %s", old, language)
        return True

    def restart_timer(self, minutes: float) -> None:
        self.host.doc.start_timer(minutes * 60, time.time(), origin="host")

    def extend_timer(self, minutes: float) -> None:
        """Give `minutes` more (a timer that is not running starts with that much)."""
        timer = self.host.doc.timer()
        if timer is None:
            self.restart_timer(minutes)
            return
        self.host.doc.start_timer(timer["duration_s"] + minutes * 60, timer["started_at"],
                                  origin="host")

    def run(self, stdin: str = "") -> str | None:
        """The interviewer's Run: the current shared code through the host's run service
        (with `stdin`: a console run). Returns the reason when it is refused (also kept in
        `run_refusals`), else None."""
        try:
            self.host.run_code(by="host", stdin=stdin)
        except (RunRefused, AssessIQError) as exc:
            self.run_refusals.append(str(exc))
            self.changes.emit("run_refusals")
            return str(exc)
        return None

    def hidden_results(self) -> dict[str, list[dict[str, Any]]]:
        """The hidden tests' outcomes per run id (from the host's private store only)."""
        if self.ended is not None:
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self.host.store.private("hidden_results"):
            value = row.get("value")
            if isinstance(value, dict) and isinstance(value.get("tests"), list):
                out[str(value.get("run_id"))] = value["tests"]
        return out

    async def end(self) -> Ended:
        """Seal the session file and write the readable reports next to it. When that fails
        (`AssessIQError` such as `StoreError`, or `OSError`: a full disk, a store error) it
        is logged and raised, and `end()` can be called again: it goes on from where it
        stopped (the score is stored once; a file already sealed is not sealed again)."""
        if self.ended is not None:
            return self.ended
        log.info("host: ending the session")
        with contextlib.suppress(Exception):
            self.host.doc.set_phase("ended", origin="host")
        try:
            if not self._score_saved:
                self.host.store.add_private("score", self.evaluation().to_json())
                self._score_saved = True
            if self.sealed_path is None:
                self.sealed_path = await self.host.end()
            path = self.sealed_path
            if self._server is not None:
                await self._server.stop()
                self._server = None
            record = await asyncio.to_thread(SessionRecord.load, path)
            verdict = verify_record(record)
            md, html = write_reports(record, verdict, path)
        except (AssessIQError, OSError) as exc:
            what = "sealed" if self.sealed_path is None else "reported (it is sealed)"
            log.error("host: the session could not be %s: %s", what, exc)
            self.changes.emit("ended")
            raise
        self.ended = Ended(path, md, html, verdict)
        self.changes.emit("ended")
        log.info("host: session sealed at %s", path)
        return self.ended

    async def close(self) -> None:
        """Stop without sealing (the app is shutting down)."""
        if self.ended is not None:
            return
        self.unwatch()
        await self.host.close()  # keeps the unsealed file
        if self._server is not None:
            await self._server.stop()


def _setup_json(setup: HostSetup) -> dict[str, Any]:
    """The setup as the live table keeps it for a resume (the policy is in the metadata)."""
    problem = setup.problem
    return {"problem": {"title": problem.title, "statement": problem.statement,
                        "language": problem.language, "starter": problem.starter,
                        "public": [t.to_json() for t in problem.public],
                        "hidden": [t.to_json() for t in problem.hidden]},
            "language": setup.language, "duration_min": setup.duration_min,
            "label": setup.label, "signaling": setup.signaling, "lan": setup.lan,
            "lan_address": setup.lan_address}


def _setup_from(host: Host) -> HostSetup:
    """The setup of a resumed session, from its file: the live table's copy (`_setup_json`),
    the policy from the metadata (what verify uses). A damaged copy is one line."""
    from .problems import TestCase

    live = host.store.live().get("setup")
    meta = host.store.meta()
    try:
        policy = Policy.from_toml(str(meta["policy"])) if meta.get("policy") else \
            Policy.default()
        if not isinstance(live, dict):  # a session made by the peer API, not this app
            title = str(meta.get("problem") or "Interview")
            problem = Problem(title=title, statement=host.doc.problem or f"# {title}",
                              language=host.doc.language or "python")
            return HostSetup(problem=problem, language=problem.language, policy=policy,
                             label=str(meta.get("label") or ""))
        p = live["problem"]

        def cases(key: str) -> tuple[TestCase, ...]:
            return tuple(TestCase(str(t["name"]), str(t["stdin"]), str(t["expected"]))
                         for t in p[key])

        problem = Problem(title=str(p["title"]), statement=str(p["statement"]),
                          language=str(p["language"]), starter=str(p["starter"]),
                          public=cases("public"), hidden=cases("hidden"))
        return HostSetup(problem=problem, language=str(live["language"]),
                         duration_min=float(live["duration_min"]), policy=policy,
                         label=str(live["label"]), signaling=live.get("signaling"),
                         lan=bool(live["lan"]), lan_address=str(live["lan_address"]))
    except (KeyError, TypeError, ValueError, AssessIQError) as exc:
        raise AssessIQError(f"cannot resume {host.store.path.name}: its setup is damaged "
                            f"({exc})") from None
