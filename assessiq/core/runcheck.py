"""Runs that prove themselves: how a test verdict is decided, and the check that every sealed
run's verdicts follow from what the run recorded.

The host's `RunService` and `assessiq verify` both decide "passed" with `case_passes` below,
so a verdict in the record can be recomputed offline from the record alone. A sealed run
(one row of the session file's `runs` table, proof version `PROOF_VERSION`) records:

- request: the sandbox request (language, the source in `files`, limits), `by`, and
  `source_sha256`, the SHA-256 of the exact source that ran;
- result: the sandbox's own result of the plain run, `proof`, `verdict` ("passed", "failed",
  "ran" when there were no public tests, "error" when the host could not run it), `tests`
  (each public test as the host set it: `name`, `stdin`, `expected`, with the `actual`
  output, its `status`, exit `code` and `passed`), and `hidden` (each hidden test only as
  digests: `case` over its input and expected output, `expected_digest` and `actual_digest`
  over the normalized outputs, with `status`, `code` and `passed`; the hidden tests' text
  stays in the host's private entries).

`check_runs` recomputes every verdict from those fields and reports each run whose recorded
verdict does not follow, or whose source does not match its digest. It is pure: no I/O, and it
never trusts the shape of what it reads (a tampered file may hold anything).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .encoding import canonical_json, sha256_hex

__all__ = [
    "PROOF_VERSION",
    "RunCheck",
    "RunsCheck",
    "case_digest",
    "case_passes",
    "check_run",
    "check_runs",
    "hidden_test_record",
    "normalize_output",
    "output_digest",
    "outputs_match",
    "public_test_record",
    "run_verdict",
    "source_digest",
]

PROOF_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --- the one comparison -----------------------------------------------------------------------
def normalize_output(text: str) -> list[str]:
    """Lines without trailing spaces and without trailing blank lines (the usual judge rule;
    the same rule as `sandbox.testcases.normalize`, which the sandbox keeps for its diffs)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def outputs_match(expected: str, actual: str) -> bool:
    return normalize_output(expected) == normalize_output(actual)


def _exited_cleanly(status: str | None, code: int | None) -> bool:
    """The program ran to its end and exited with 0 (no time-out, signal or sandbox status)."""
    return status is None and code == 0


def case_passes(expected: str, actual: str, *, status: str | None, code: int | None) -> bool:
    """A test passes when the program exited cleanly and its output matches the expected."""
    return _exited_cleanly(status, code) and outputs_match(expected, actual)


def output_digest(text: str) -> str:
    """SHA-256 of an output after normalizing: equal digests exactly when outputs match."""
    return sha256_hex("\n".join(normalize_output(text)).encode("utf-8"))


def case_digest(stdin: str, expected: str) -> str:
    """Names one test case without revealing it: SHA-256 of its canonical input and output."""
    return sha256_hex(canonical_json({"expected": expected, "stdin": stdin}))


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def run_verdict(public_passed: Sequence[bool], *, error: bool = False) -> str:
    """A run's verdict from its public tests: "error", "ran" (no tests), "passed" or "failed"."""
    if error:
        return "error"
    if not public_passed:
        return "ran"
    return "passed" if all(public_passed) else "failed"


def public_test_record(
    *, name: str, stdin: str, expected: str, actual: str, status: str | None,
    code: int | None, time: float | None = None, diff: str = "", message: str | None = None,
) -> dict[str, Any]:
    """One public test as a sealed run records it (its verdict decided here)."""
    return {"name": name, "hidden": False, "stdin": stdin, "expected": expected,
            "actual": actual, "status": status, "code": code, "time": time, "diff": diff,
            "message": message,
            "passed": case_passes(expected, actual, status=status, code=code)}


def hidden_test_record(
    *, stdin: str, expected: str, actual: str, status: str | None, code: int | None,
) -> dict[str, Any]:
    """One hidden test as a sealed run records it: digests, never its text."""
    return {"case": case_digest(stdin, expected), "expected_digest": output_digest(expected),
            "actual_digest": output_digest(actual), "status": status, "code": code,
            "passed": case_passes(expected, actual, status=status, code=code)}


# --- the check ----------------------------------------------------------------------------------
@dataclass
class RunCheck:
    """What `check_runs` found for one run. `ok` is None when the run carries no proof (it was
    recorded before runs did, or has no result): nothing to recompute, nothing contradicted."""

    id: str
    verdict: str | None
    ok: bool | None
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "verdict": self.verdict, "ok": self.ok}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class RunsCheck:
    runs: list[RunCheck]

    @property
    def errors(self) -> list[str]:
        return [e for r in self.runs for e in r.errors]


def _stage_fields(test: Mapping[str, Any]) -> tuple[str | None, int | None] | None:
    status, code = test.get("status"), test.get("code")
    if status is not None and not isinstance(status, str):
        return None
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        return None
    return status, code


def _check_public(label: str, tests: object, errors: list[str]) -> list[bool]:
    if not isinstance(tests, list):
        errors.append(f"{label}: its public tests are not a list")
        return []
    out: list[bool] = []
    names: set[str] = set()
    for i, test in enumerate(tests):
        where = f"{label}, public test #{i + 1}"
        if not isinstance(test, Mapping):
            errors.append(f"{where}: not an object")
            continue
        texts = [test.get(k) for k in ("name", "stdin", "expected", "actual")]
        stage = _stage_fields(test)
        recorded = test.get("passed")
        if not all(isinstance(t, str) for t in texts) or stage is None or \
                not isinstance(recorded, bool):
            errors.append(f"{where}: lacks its input, expected or actual output, exit or "
                          f"verdict")
            continue
        name, _stdin, expected, actual = (str(t) for t in texts)
        if name in names:
            errors.append(f"{label}: two public tests are named {name!r}")
        names.add(name)
        passed = case_passes(expected, actual, status=stage[0], code=stage[1])
        if passed != recorded:
            errors.append(
                f"{label}: public test {name!r} is recorded as "
                f"{'passed' if recorded else 'failed'} but its recorded output "
                f"{'matches' if passed else 'does not pass'} (recomputed: "
                f"{'passed' if passed else 'failed'})")
        out.append(passed)
    return out


def _check_hidden(label: str, tests: object, errors: list[str]) -> None:
    if not isinstance(tests, list):
        errors.append(f"{label}: its hidden tests are not a list")
        return
    for i, test in enumerate(tests):
        where = f"{label}, hidden test #{i + 1}"
        if not isinstance(test, Mapping):
            errors.append(f"{where}: not an object")
            continue
        digests = [test.get(k) for k in ("case", "expected_digest", "actual_digest")]
        stage = _stage_fields(test)
        recorded = test.get("passed")
        if not all(isinstance(d, str) and _HEX64.match(d) for d in digests) or \
                stage is None or not isinstance(recorded, bool):
            errors.append(f"{where}: lacks its digests, exit or verdict")
            continue
        passed = _exited_cleanly(*stage) and digests[1] == digests[2]
        if passed != recorded:
            errors.append(f"{where} is recorded as {'passed' if recorded else 'failed'} "
                          f"but its recorded digests say {'passed' if passed else 'failed'}")


def _check_source(label: str, request: Mapping[str, Any], errors: list[str]) -> None:
    files = request.get("files")
    digest = request.get("source_sha256")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        errors.append(f"{label}: has no source digest")
        return
    if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], Mapping) \
            or not isinstance(files[0].get("content"), str):
        errors.append(f"{label}: its source is missing")
        return
    if source_digest(files[0]["content"]) != digest:
        errors.append(f"{label}: its source does not match its digest")
    language = request.get("language")
    if not isinstance(language, str) or not language:
        errors.append(f"{label}: has no language")


def check_run(run: Mapping[str, Any]) -> RunCheck:
    """Recompute one sealed run's verdicts from its own record."""
    run_id = run.get("id")
    ident = run_id if isinstance(run_id, str) else repr(run_id)
    label = f"run {ident}"
    request, result = run.get("request"), run.get("result")
    if not isinstance(result, Mapping):
        return RunCheck(ident, None, None, note="no result")
    recorded = result.get("verdict")
    if "proof" not in result:
        return RunCheck(ident, recorded if isinstance(recorded, str) else None, None,
                        note="recorded before runs carried their proof")
    errors: list[str] = []
    if result.get("proof") != PROOF_VERSION:
        errors.append(f"{label}: unknown proof version {result.get('proof')!r}")
        return RunCheck(ident, None, False, errors)
    if not isinstance(request, Mapping):
        errors.append(f"{label}: has no request")
    else:
        _check_source(label, request, errors)
    error = "error" in result
    public = _check_public(label, result.get("tests"), errors)
    _check_hidden(label, result.get("hidden", []), errors)
    verdict = run_verdict(public, error=error)
    if recorded != verdict:
        errors.append(f"{label}: its verdict is recorded as {recorded!r} but follows from its "
                      f"tests as {verdict!r}")
    return RunCheck(ident, recorded if isinstance(recorded, str) else None, not errors, errors)


def check_runs(runs: Sequence[Mapping[str, Any]]) -> RunsCheck:
    """Check every run of a record (`SessionRecord.runs`), in order."""
    return RunsCheck([check_run(run) if isinstance(run, Mapping) else
                      RunCheck(repr(run), None, False, ["a run row is not an object"])
                      for run in runs])
