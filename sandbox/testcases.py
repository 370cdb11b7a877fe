"""Run a submission against test cases: pass/fail, time and a readable diff per case.

Whether an outcome goes to the shared document or stays with the host is the app's decision;
`hidden` travels on the case and its outcome so the app can make it.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass, replace
from typing import Any

from sandbox.backend import Backend, default_backend
from sandbox.errors import InvalidRequestError
from sandbox.models import RunRequest, RunResult

MAX_TESTS = 100
MAX_DIFF_LINES = 200


@dataclass(frozen=True)
class TestCase:
    """One input and the output it should produce."""

    __test__ = False  # not a pytest class

    name: str
    stdin: str
    expected_stdout: str
    hidden: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidRequestError("a test case needs a name")
        if not isinstance(self.stdin, str) or not isinstance(self.expected_stdout, str):
            raise InvalidRequestError(f"test {self.name!r}: stdin and expected_stdout are text")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stdin": self.stdin,
                "expected_stdout": self.expected_stdout, "hidden": self.hidden}

    @classmethod
    def from_dict(cls, data: Any) -> TestCase:
        if not isinstance(data, dict):
            raise InvalidRequestError("a test case must be an object")
        return cls(name=data.get("name", ""), stdin=data.get("stdin", ""),
                   expected_stdout=data.get("expected_stdout", ""),
                   hidden=bool(data.get("hidden", False)))


@dataclass(frozen=True)
class TestOutcome:
    """How the submission did on one case. `time` is the run's wall time in ms."""

    __test__ = False

    name: str
    hidden: bool
    passed: bool
    status: str | None
    time: float | None
    actual: str
    diff: str
    message: str | None = None
    code: int | None = None  # the run's exit code

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hidden": self.hidden, "passed": self.passed,
                "status": self.status, "time": self.time, "actual": self.actual,
                "diff": self.diff, "message": self.message, "code": self.code}


def normalize(text: str) -> list[str]:
    """Lines without trailing spaces, without trailing blank lines (the usual judge rule)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_diff(expected: str, actual: str) -> str:
    """A unified diff of expected vs actual output ("" when they match after normalizing)."""
    exp, act = normalize(expected), normalize(actual)
    if exp == act:
        return ""
    lines = list(difflib.unified_diff(exp, act, "expected", "actual", lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _outcome(case: TestCase, result: RunResult) -> TestOutcome:
    stage = result.run
    diff = output_diff(case.expected_stdout, stage.stdout)
    passed = stage.ok and not diff
    message = stage.message
    if result.compile is not None and not result.compile.ok:
        message = f"compilation failed: {result.compile.stderr.strip()[:500]}"
    return TestOutcome(name=case.name, hidden=case.hidden, passed=passed, status=stage.status,
                       time=stage.wall_time, actual=stage.stdout, diff=diff, message=message,
                       code=stage.code)


async def run_tests(submission: RunRequest, tests: list[TestCase],
                    backend: Backend | None = None, *, concurrency: int = 2
                    ) -> list[TestOutcome]:
    """Run `submission` once per case (its stdin replaced by the case's), in case order."""
    if len(tests) > MAX_TESTS:
        raise InvalidRequestError(f"at most {MAX_TESTS} test cases")
    names = [t.name for t in tests]
    if len(set(names)) != len(names):
        raise InvalidRequestError("test case names must be unique")
    chosen = backend or default_backend()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(case: TestCase) -> TestOutcome:
        async with gate:
            return _outcome(case, await chosen.run(replace(submission, stdin=case.stdin)))

    return list(await asyncio.gather(*(one(t) for t in tests)))
