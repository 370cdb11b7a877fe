"""The interviewer's session as the pages see it: set up, admit, watch, run, note, end.

It wraps the peer layer's `Host` (the connection, the document, the verified integrity log)
and adds what the interviewer's screens need: the run executor, private notes, the live
evaluation (warnings, flags, score) and the export of the sealed file and a readable report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.integrity import Envelope
from ..core.policy import Policy
from ..core.record import SessionRecord
from ..core.score import Evaluation, evaluate
from ..core.verify import Verdict, verify_record
from ..peer import Host, PeerConfig
from .problems import Problem
from .report import write_reports
from .runner import RunExecutor

__all__ = ["HostController", "HostSetup"]

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


@dataclass
class Ended:
    session_file: Path
    report_md: Path
    report_html: Path
    verdict: Verdict


class HostController:
    """One hosted interview. `await HostController.start(setup)`."""

    def __init__(self, setup: HostSetup, host: Host, server: Any) -> None:
        self.setup = setup
        self.host = host
        self._server = server
        self.started_at = time.time()
        self.notes: list[tuple[float, str]] = []
        self.ended: Ended | None = None
        self.executor = RunExecutor(
            host.doc, public=setup.problem.public, hidden=setup.problem.hidden,
            private=host.store.add_private, on_result=self._store_run)
        self._runner = asyncio.create_task(self.executor.serve(), name="host-runs")

    @classmethod
    async def start(cls, setup: HostSetup, *, config: PeerConfig | None = None) -> HostController:
        server = None
        signaling = setup.signaling
        if signaling is None and not setup.lan:
            from signaling import ServerConfig, SignalingServer

            server = SignalingServer(ServerConfig(host="127.0.0.1", port=0))
            await server.start()
            signaling = f"ws://127.0.0.1:{server.port}"
        try:
            host = await Host.start(
                signaling=signaling, lan=setup.lan, lan_address=setup.lan_address,
                config=config, label=setup.label or None,
                advertise_interfaces=[setup.lan_address] if setup.lan else None)
        except BaseException:
            if server is not None:
                await server.stop()
            raise
        problem = setup.problem
        host.store.set_meta("policy", setup.policy.text)
        host.store.set_meta("problem", problem.title)
        host.store.add_private("hidden_tests", [t.to_json() for t in problem.hidden])
        doc = host.doc
        with doc.transaction("host"):
            doc.set_problem(problem.statement, origin="host")
            doc.set_language(setup.language, origin="host")
            doc.set_public_tests([t.to_json() for t in problem.public], origin="host")
            doc.set_phase("lobby", origin="host")
            if problem.starter and not doc.code_text:
                doc.set_code(problem.starter, origin="host")
        return cls(setup, host, server)

    # --- state for the pages ------------------------------------------------------------
    @property
    def doc(self) -> Any:
        return self.host.doc

    @property
    def invite_text(self) -> str:
        return self.host.invite.encode()

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
        return join.name if join is not None else None

    @property
    def connected(self) -> bool:
        return self.host.is_connected

    @property
    def events(self) -> list[Envelope]:
        return self.host.events

    def evaluation(self, now: float | None = None) -> Evaluation:
        return evaluate(self.host.events, self.setup.policy, start_t=self.started_at,
                        end_t=time.time() if now is None else now)

    # --- actions ------------------------------------------------------------------------
    def add_note(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        now = time.time()
        self.notes.append((now, text))
        self.host.store.add_private("note", {"text": text}, t=now)

    def set_phase(self, phase: str) -> None:
        doc = self.host.doc
        with doc.transaction("host"):
            doc.set_phase(phase, origin="host")  # type: ignore[arg-type]
            if phase == "interview" and doc.timer() is None:
                doc.start_timer(self.setup.duration_min * 60, time.time(), origin="host")

    def restart_timer(self, minutes: float) -> None:
        self.host.doc.start_timer(minutes * 60, time.time(), origin="host")

    def request_run(self, by: str = "host") -> str:
        return request_run(self.host.doc, by)

    def _store_run(self, run_id: str, result: dict[str, Any]) -> None:
        request = next((r for r in self.host.doc.runs() if r["run_id"] == run_id), None)
        if request is not None:
            req = {k: v for k, v in request.items() if k != "result"}
            self.host.store.put_run(run_id, req, result)

    async def end(self) -> Ended:
        """Seal the session file and write the readable reports next to it."""
        if self.ended is not None:
            return self.ended
        with contextlib.suppress(Exception):
            self.host.doc.set_phase("ended", origin="host")
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        self.executor.close()
        evaluation = self.evaluation()
        self.host.store.add_private("score", evaluation.to_json())
        path = await self.host.end()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        record = await asyncio.to_thread(SessionRecord.load, path)
        verdict = verify_record(record)
        md, html = write_reports(record, verdict, path)
        self.ended = Ended(path, md, html, verdict)
        log.info("host: session sealed at %s", path)
        return self.ended

    async def close(self) -> None:
        """Stop without sealing (the app is shutting down)."""
        if self.ended is not None:
            return
        self._runner.cancel()
        self.executor.close()
        await self.host.close()
        with contextlib.suppress(Exception):
            self.host.store.close()
        if self._server is not None:
            await self._server.stop()


def request_run(doc: Any, by: str) -> str:
    """Ask for a run of the current code (either side may ask; the host executes it)."""
    import secrets

    run_id = f"{by[0]}{int(time.time() * 1000) % 10**9}{secrets.token_hex(2)}"
    doc.request_run(run_id, by=by, at=time.time(), language=doc.language, source=doc.code_text,
                    origin=by)
    return run_id
