"""The host's run service: only the host executes code.

The candidate (or the host's own editor) asks for a run; the service refuses oversized sources,
rate-limits each requester, queues what it accepts, runs it in the sandbox with the problem's
public and hidden tests, puts the public results into the shared document and keeps the hidden
ones in the host's private store.

The service grades against its own copy of the tests the host set (`set_public_tests`, the
`public_tests` argument, `hidden_tests`), never against the shared document's, which only shows
them. Each run it seals records what it was graded against, so `assessiq verify` can recompute
every verdict (see `assessiq.core.runcheck`, whose comparison decides them here too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox import Backend, PistonError, RunRequest, Runtime, SandboxError, default_backend
from sandbox.languages import canonical_name
from sandbox.testcases import TestCase, run_tests

from .core import runcheck
from .core.document import SharedDoc
from .core.errors import AssessIQError
from .core.store import SessionStore

__all__ = ["RunLimits", "RunRefused", "RunService"]

log = logging.getLogger(__name__)

MAX_OUTPUT_IN_DOC = 16 * 1024


class RunRefused(AssessIQError):
    """A run request was not accepted; the message tells the requester why."""


@dataclass(frozen=True)
class RunLimits:
    """Limits on run requests. Defaults suit one interview: a few runs a minute, small files."""

    max_source_bytes: int = 64 * 1024
    burst: int = 3  # runs a requester may start back to back
    per_minute: float = 10.0  # sustained runs per minute per requester
    max_waiting: int = 4  # queued runs per requester
    run_timeout_ms: int = 5_000
    max_stdin_bytes: int = 64 * 1024  # a console run's input (over `control`: 2 KiB, there)

    def __post_init__(self) -> None:
        if self.max_source_bytes <= 0 or self.burst < 1 or self.per_minute <= 0:
            raise ValueError("run limits must be positive")
        if self.max_waiting < 1 or self.run_timeout_ms <= 0:
            raise ValueError("run limits must be positive")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Job:
    run_id: str
    by: str
    request: RunRequest
    submitted: float = field(default_factory=time.time)


_CONFIGURED_LIMIT = re.compile(r"^run_timeout cannot exceed the configured limit of (\d+)$")


def _within_configured_limit(request: RunRequest, exc: PistonError) -> RunRequest | None:
    """`request` with its run timeout lowered to the one Piston says it is configured with,
    when that is why Piston refused it; else None."""
    match = _CONFIGURED_LIMIT.match(exc.message) if exc.status_code == 400 else None
    if match is None or request.run_timeout is None:
        return None
    limit = int(match.group(1))
    return replace(request, run_timeout=limit) if 0 < limit < request.run_timeout else None


INTERRUPTED = ("interrupted: the interviewer's app stopped while this run was waiting or "
               "running; it was not run again")


_DOC_TEST_KEYS = ("name", "hidden", "passed", "status", "code", "time", "message", "actual",
                  "diff")


def _doc_result(result: dict[str, Any]) -> dict[str, Any]:
    """A recorded result as the document shows it (what `_execute` would have written)."""
    out = _for_doc({k: v for k, v in result.items() if k not in ("hidden", "proof")})
    tests = result.get("tests")
    if isinstance(tests, list):
        out["tests"] = [{k: _trim(v) if isinstance(v, str) and k in ("actual", "diff") else v
                         for k, v in t.items() if k in _DOC_TEST_KEYS}
                        for t in tests if isinstance(t, dict)]
    return out


def _trim(text: str) -> str:
    if len(text) <= MAX_OUTPUT_IN_DOC:
        return text
    return text[:MAX_OUTPUT_IN_DOC] + f"\n… ({len(text) - MAX_OUTPUT_IN_DOC} more characters)"


def _for_doc(result: dict[str, Any]) -> dict[str, Any]:
    """A run result with long outputs cut, so one noisy program cannot bloat the document."""
    out = dict(result)
    for stage in ("run", "compile"):
        if isinstance(out.get(stage), dict):
            out[stage] = {k: _trim(v) if isinstance(v, str) else v for k, v in out[stage].items()}
    return out


class RunService:
    """Accepts, queues and executes run requests on the host. Use as `async with`."""

    def __init__(
        self,
        doc: SharedDoc,
        store: SessionStore | None = None,
        *,
        backend: Backend | None = None,
        hidden_tests: Sequence[TestCase] = (),
        public_tests: Sequence[Mapping[str, str]] | None = None,
        limits: RunLimits | None = None,
        origin: str = "host",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.doc = doc
        self.store = store
        self.backend = backend
        self.hidden_tests = list(hidden_tests)
        self._public: tuple[TestCase, ...] = ()
        self.limits = limits or RunLimits()
        self.origin = origin
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._waiting: dict[str, int] = {}
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._done: dict[str, asyncio.Event] = {}
        self.runtimes: list[Runtime] = []
        self.backend_error: str | None = None  # why the runtimes could not be listed
        if public_tests is not None:
            self.set_public_tests(public_tests)

    def set_public_tests(self, tests: Sequence[Mapping[str, str]]) -> None:
        """Set the public tests (each `{"name", "stdin", "expected"}`): the service keeps its
        own copy to grade against and writes them to the shared document for display.
        Raises `ValueError` for malformed tests (nothing changes then)."""
        if isinstance(tests, str | bytes) or not isinstance(tests, Sequence):
            raise ValueError("public tests must be a list of objects")
        try:
            cases = tuple(TestCase(name=t["name"], stdin=t["stdin"],
                                   expected_stdout=t["expected"]) for t in tests)
        except (KeyError, TypeError, SandboxError) as exc:
            raise ValueError(f"malformed public tests: {exc}") from exc
        if len({c.name for c in cases}) != len(cases):
            raise ValueError("public test names must be unique")
        self.doc.set_public_tests([{"name": c.name, "stdin": c.stdin,
                                    "expected": c.expected_stdout} for c in cases],
                                  origin=self.origin)
        self._public = cases

    def restore(self, *, reason: str = INTERRUPTED) -> list[str]:
        """After the host's app restarted (`Host.resume`): take the public tests back from
        the host's own document (its state document, which only the host writes) and close
        every run that was waiting or running when the app died. Such a run is never run
        again: its result says it was interrupted (`interrupted: true`, verdict "error"), in
        the document and in the record. A finished run keeps its result and is never run or
        graded again. Returns the ids of the runs marked interrupted."""
        try:
            self._public = tuple(TestCase(name=t["name"], stdin=t["stdin"],
                                          expected_stdout=t["expected"])
                                 for t in self.doc.public_tests())
        except SandboxError as exc:
            log.warning("the stored public tests cannot be graded against: %s", exc)
            self._public = ()
        stored = {r["id"]: r for r in self.store.runs()} if self.store is not None else {}
        marked: list[str] = []
        for run in self.doc.runs():
            run_id = run["run_id"]
            done = stored.get(run_id)
            if done is not None and done["result"] is not None:
                if run["result"] is None:  # recorded; the kill came before the document
                    self.doc.set_run_result(run_id, _doc_result(done["result"]),
                                            origin=self.origin)
                continue  # finished: never again
            # Not in the record: interrupted, whatever the document showed (the record,
            # written first, is what decides a run; see `_execute`).
            self.doc.set_run_result(run_id, {"error": reason, "interrupted": True,
                                             "verdict": runcheck.run_verdict([], error=True)},
                                    origin=self.origin)
            if self.store is not None:
                source = run["source"]
                try:
                    request = RunRequest.single(run["language"], source,
                                                stdin=run.get("stdin") or "",
                                                run_timeout=self.limits.run_timeout_ms)
                    sealed_request = request.to_dict()
                except SandboxError:
                    sealed_request = {"language": run["language"]}
                sealed_request |= {"by": run["by"],
                                   "source_sha256": runcheck.source_digest(source)}
                self.store.put_run(run_id, sealed_request, {
                    "error": reason, "interrupted": True, "proof": runcheck.PROOF_VERSION,
                    "verdict": runcheck.run_verdict([], error=True), "tests": [],
                    "hidden": []}, t=float(run["at"]))
            marked.append(run_id)
        if marked:
            log.warning("runs %s were interrupted by the host's restart; not run again",
                        ", ".join(marked))
        return marked

    @property
    def public_tests(self) -> list[dict[str, str]]:
        """The public tests runs are graded against (the host's copy, not the document's)."""
        return [{"name": c.name, "stdin": c.stdin, "expected": c.expected_stdout}
                for c in self._public]

    @property
    def languages(self) -> set[str]:
        """The names of the languages the host can run (empty until `start` has listed them)."""
        return {r.language for r in self.runtimes}

    def language_for(self, name: str) -> str:
        """The runtime's name for a language the document or a requester gives ("cpp", "C++",
        "js"...): the sandbox's aliases first, then the backend's own (a runtime's name or
        aliases, as Piston lists them). Raises `RunRefused` when the host has no such runtime;
        before the runtimes are known, the sandbox's name is passed on as it is."""
        wanted = {canonical_name(name), name.strip().lower()}
        if not self.runtimes:
            return canonical_name(name)
        for rt in self.runtimes:
            if any(rt.matches(w, "*") for w in wanted):
                return rt.language
        raise RunRefused(f"the host cannot run {canonical_name(name)!r} "
                         f"(it has: {', '.join(sorted(self.languages))})")

    async def __aenter__(self) -> RunService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Learn which languages the host can run, then start taking runs.

        A backend that cannot list its runtimes (Piston unreachable, a bad URL) does not stop
        the session: the reason is kept in `backend_error` (one line) and logged, and each run
        then ends with the backend's own one-line error."""
        if self._worker is None:
            try:
                backend = self.backend or default_backend()
                self.runtimes = list(await backend.runtimes())
                self.backend_error = None
            except SandboxError as exc:
                self.backend_error = str(exc)
                log.warning("cannot list the host's runtimes: %s", exc)
            except Exception as exc:  # a backend bug must not reach the UI as a traceback
                self.backend_error = f"the sandbox backend failed: {type(exc).__name__}: {exc}"
                log.exception("cannot list the host's runtimes")
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="runs")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def _take_token(self, by: str) -> bool:
        now = self._clock()
        bucket = self._buckets.setdefault(by, _Bucket(tokens=self.limits.burst, at=now))
        bucket.tokens = min(self.limits.burst,
                            bucket.tokens + (now - bucket.at) * self.limits.per_minute / 60.0)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def submit(self, *, by: str, language: str, source: str, stdin: str = "") -> str:
        """Accept a run request or raise `RunRefused`; returns the run id."""
        if not isinstance(source, str) or not isinstance(language, str) or \
                not isinstance(stdin, str):
            raise RunRefused("a run needs a language and the source as text")
        try:
            size = len(source.encode("utf-8"))
            stdin_size = len(stdin.encode("utf-8"))
        except UnicodeEncodeError:
            raise RunRefused("the source or the input is not valid text (a lone "
                             "surrogate)") from None
        if size > self.limits.max_source_bytes:
            raise RunRefused(f"the source is {size // 1024} KiB; runs are limited to "
                             f"{self.limits.max_source_bytes // 1024} KiB")
        if stdin_size > self.limits.max_stdin_bytes:
            raise RunRefused(f"the input is {stdin_size:,} bytes; a run's input is limited "
                             f"to {self.limits.max_stdin_bytes:,} bytes")
        language = self.language_for(language)
        if self._waiting.get(by, 0) >= self.limits.max_waiting:
            raise RunRefused("runs are already waiting; try again when they finish")
        if not self._take_token(by):
            raise RunRefused(f"too many runs; at most {self.limits.per_minute:g} a minute")
        try:
            request = RunRequest.single(language, source, stdin=stdin,
                                        run_timeout=self.limits.run_timeout_ms)
        except SandboxError as exc:
            raise RunRefused(str(exc)) from exc
        run_id = secrets.token_hex(6)
        now = time.time()  # the run's time everywhere: the live page, the record, the report
        self.doc.request_run(run_id, by=by, at=now, language=language, source=source,
                             stdin=stdin, origin=self.origin)
        self._waiting[by] = self._waiting.get(by, 0) + 1
        self._done[run_id] = asyncio.Event()
        self._queue.put_nowait(_Job(run_id, by, request, submitted=now))
        return run_id

    async def wait(self, run_id: str) -> None:
        """Wait until a submitted run has its result in the document."""
        await self._done[run_id].wait()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._execute(job)
            except Exception:  # one broken run must never stop the service
                log.exception("run %s failed inside the host", job.run_id)
                try:
                    self._fail(job, "the host could not run this")
                except Exception:
                    log.exception("run %s: its failure could not be recorded", job.run_id)
            finally:
                self._waiting[job.by] -= 1
                self._done[job.run_id].set()

    def _sealed_request(self, job: _Job) -> dict[str, Any]:
        """The run's request as the record keeps it: the exact source, its digest, who."""
        source = job.request.files[0].content if len(job.request.files) == 1 else ""
        return job.request.to_dict() | {"by": job.by,
                                        "source_sha256": runcheck.source_digest(source)}

    def _fail(self, job: _Job, reason: str) -> None:
        """The run ended without a result: say so in the record, then in the document."""
        if self.store is not None:
            self.store.put_run(job.run_id, self._sealed_request(job), {
                "error": reason, "proof": runcheck.PROOF_VERSION,
                "verdict": runcheck.run_verdict([], error=True), "tests": [], "hidden": []},
                t=job.submitted)
        self.doc.set_run_result(job.run_id, {"error": reason}, origin=self.origin)

    async def _execute(self, job: _Job) -> None:
        backend = self.backend or default_backend()
        try:
            try:
                result = await backend.run(job.request)
            except PistonError as exc:
                lowered = _within_configured_limit(job.request, exc)
                if lowered is None:
                    raise
                # A Piston configured with a lower limit than the session asks for (a stock
                # Piston allows 3 s) refuses every run: run within its limit instead, and
                # the sealed request says which limit applied.
                log.warning("run %s: %s; running within it", job.run_id, exc.message)
                job.request = lowered
                result = await backend.run(job.request)
        except SandboxError as exc:
            self._fail(job, str(exc))
            return
        public_cases = list(self._public)  # the host's copy, as it is when the run starts
        public = [
            runcheck.public_test_record(
                name=case.name, stdin=case.stdin, expected=case.expected_stdout,
                actual=o.actual, status=o.status, code=o.code, time=o.time, diff=o.diff,
                message=o.message)
            for case, o in zip(public_cases,
                               await run_tests(job.request, public_cases, backend),
                               strict=True)]
        hidden_cases = list(self.hidden_tests)
        hidden_out = await run_tests(job.request, hidden_cases, backend)
        hidden = [runcheck.hidden_test_record(stdin=case.stdin, expected=case.expected_stdout,
                                              actual=o.actual, status=o.status, code=o.code)
                  for case, o in zip(hidden_cases, hidden_out, strict=True)]
        verdict = runcheck.run_verdict([t["passed"] for t in public])
        doc_result = _for_doc(result.to_dict())
        doc_result["tests"] = [
            {k: t[k] for k in ("name", "hidden", "passed", "status", "code", "time",
                               "message")} | {"actual": _trim(t["actual"]),
                                              "diff": _trim(t["diff"])}
            for t in public]
        doc_result["verdict"] = verdict
        # The record first (fsynced), then the document both people see: a kill between
        # the two leaves a recorded run whose result `restore` puts in the document.
        if self.store is not None:
            sealed = result.to_dict() | {"proof": runcheck.PROOF_VERSION, "verdict": verdict,
                                         "tests": public, "hidden": hidden}
            self.store.put_run(job.run_id, self._sealed_request(job), sealed, t=job.submitted)
            if hidden_out:
                # the hidden tests' outcomes in full, for the interviewer only; the sealed
                # run above keeps only their digests and verdicts
                self.store.add_private("hidden_results", {
                    "run_id": job.run_id,
                    "tests": [o.to_dict() | {"passed": h["passed"], "case": h["case"]}
                              for o, h in zip(hidden_out, hidden, strict=True)]})
        self.doc.set_run_result(job.run_id, doc_result, origin=self.origin)
        log.info("run %s by %s: %s, %d/%d public, %d/%d hidden", job.run_id, job.by,
                 result.run.status or "ok", sum(t["passed"] for t in public),
                 len(public), sum(h["passed"] for h in hidden), len(hidden))
