"""Code runs, on the host only: run requests in the shared document are executed in the
sandbox with the public tests (results go back into the document for both people to see)
and the hidden tests (results stay in the host's private store)."""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sandbox
from sandbox import RunRequest, RunResult

from ..core.document import SharedDoc
from .problems import TestCase

__all__ = ["RunExecutor", "compare", "run_tests"]

log = logging.getLogger(__name__)

RunFunc = Callable[[RunRequest], Awaitable[RunResult]]
PrivateSink = Callable[[str, Any], None]


def compare(expected: str, actual: str) -> tuple[bool, str]:
    """Whether the output matches (trailing whitespace ignored per line) and a unified diff."""
    exp = [line.rstrip() for line in expected.rstrip().splitlines()]
    act = [line.rstrip() for line in actual.rstrip().splitlines()]
    if exp == act:
        return True, ""
    diff = difflib.unified_diff(exp, act, "expected", "your output", lineterm="", n=2)
    return False, "\n".join(diff)


def _error(message: str, language: str) -> dict[str, Any]:
    stage = {"stdout": "", "stderr": message, "output": message, "code": None, "signal": None,
             "status": "XX", "message": message, "wall_time": None, "cpu_time": None,
             "memory": None}
    return {"language": language, "version": "", "run": stage}


async def run_tests(run: RunFunc, language: str, source: str, tests: Sequence[TestCase]
                    ) -> list[dict[str, Any]]:
    out = []
    for case in tests:
        try:
            result = (await run(RunRequest.single(language, source, stdin=case.stdin))).to_dict()
        except sandbox.SandboxError as exc:
            result = _error(str(exc), language)
        stage = result["run"]
        passed, diff = compare(case.expected, stage["stdout"])
        passed = passed and stage["status"] is None and stage["code"] == 0
        out.append({"name": case.name, "passed": passed, "stdout": stage["stdout"][-4000:],
                    "stderr": stage["stderr"][-2000:], "expected": case.expected,
                    "diff": diff, "status": stage["status"], "code": stage["code"]})
    return out


class RunExecutor:
    """Executes every run requested in `doc` that has no result yet, one at a time."""

    def __init__(self, doc: SharedDoc, *, public: Sequence[TestCase] = (),
                 hidden: Sequence[TestCase] = (), run: RunFunc | None = None,
                 private: PrivateSink | None = None, origin: str = "host",
                 on_result: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.doc = doc
        self.public = list(public)
        self.hidden = list(hidden)
        self._run = run or sandbox.run
        self._private = private
        self._origin = origin
        self._on_result = on_result
        self._done: set[str] = set()
        self._wake = asyncio.Event()
        self._unsubscribe = doc.observe_updates(lambda _u, _o: self._wake.set())
        self.hidden_results: dict[str, list[dict[str, Any]]] = {}

    def close(self) -> None:
        self._unsubscribe()

    def pending(self) -> list[dict[str, Any]]:
        return [r for r in self.doc.runs()
                if r["result"] is None and r["run_id"] not in self._done]

    async def serve(self) -> None:
        """Run forever (cancel to stop)."""
        while True:
            self._wake.clear()
            for request in self.pending():
                await self.execute(request)
            await self._wake.wait()

    async def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        run_id, language, source = request["run_id"], request["language"], request["source"]
        self._done.add(run_id)
        log.info("run %s: %s, %d chars, asked by %s", run_id, language, len(source),
                 request["by"])
        try:
            result = (await self._run(RunRequest.single(language, source))).to_dict()
        except (sandbox.SandboxError, ValueError) as exc:
            result = _error(str(exc), language)
        result["tests"] = await run_tests(self._run, language, source, self.public)
        self.doc.set_run_result(run_id, result, origin=self._origin)
        if self.hidden:
            hidden = await run_tests(self._run, language, source, self.hidden)
            self.hidden_results[run_id] = hidden
            if self._private is not None:
                self._private("hidden_tests", {"run_id": run_id, "results": hidden})
        if self._on_result is not None:
            self._on_result(run_id, result)
        return result
