"""Request/result shapes: Piston's JSON in and out, and one-line refusals of bad requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox import InvalidRequestError, RunRequest, RunResult, Runtime, SourceFile, StageResult
from sandbox.models import satisfies

PISTON_RESPONSE = {
    "language": "c", "version": "10.2.0",
    "run": {"stdout": "hi\n", "stderr": "", "output": "hi\n", "code": 0, "signal": None,
            "status": None, "message": None, "wall_time": 12, "cpu_time": 3.5,
            "memory": 1024000},
    "compile": {"stdout": "", "stderr": "", "output": "", "code": 0, "signal": None,
                "status": None, "message": None, "wall_time": 300, "cpu_time": 250,
                "memory": 30000000},
}


def test_result_round_trips_pistons_shape():
    result = RunResult.from_dict(PISTON_RESPONSE)
    assert result.run.stdout == "hi\n" and result.compile is not None
    assert result.to_dict() == PISTON_RESPONSE


def test_request_round_trip_and_default_names():
    request = RunRequest(language="python", files=(SourceFile("print(1)"),
                                                   SourceFile("x = 1", "util.py")),
                         stdin="in", args=("a",), run_cpu_time=500)
    assert request.file_names() == ["file0.code", "util.py"]
    assert RunRequest.from_dict(request.to_dict()) == request


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"language": ""}, "language is required"),
    ({"files": ()}, "files must hold"),
    ({"files": (SourceFile("x", "../evil.py"),)}, "must not contain"),
    ({"files": (SourceFile("x", "/etc/passwd"),)}, "must be relative"),
    ({"files": (SourceFile("x", "a b.py"),)}, "may hold only"),
    ({"files": (SourceFile("x", "a.py"), SourceFile("y", "a.py"))}, "unique"),
    ({"files": (SourceFile("x" * 600_000),)}, "the limit is"),
    ({"run_timeout": 0}, "run_timeout must be"),
    ({"run_timeout": 10**9}, "run_timeout must be"),
    ({"run_memory_limit": 0}, "run_memory_limit must be"),
    ({"args": ("a\0b",)}, "args must be"),
])
def test_bad_requests_are_refused_with_a_reason(kwargs, message):
    base = {"language": "python", "files": (SourceFile("print(1)"),)}
    with pytest.raises(InvalidRequestError, match=message):
        RunRequest(**{**base, **kwargs})


def test_from_dict_refuses_wrong_types():
    with pytest.raises(InvalidRequestError, match="files is required as an array"):
        RunRequest.from_dict({"language": "python", "files": "x"})
    with pytest.raises(InvalidRequestError, match="run_timeout has the wrong type"):
        RunRequest.from_dict({"language": "python", "files": [{"content": "1"}],
                              "run_timeout": "5"})
    with pytest.raises(InvalidRequestError):
        StageResult(status="BOGUS")


def test_encodings_decode_or_refuse():
    assert SourceFile("aGk=", encoding="base64").data() == b"hi"
    assert SourceFile("6869", encoding="hex").data() == b"hi"
    with pytest.raises(InvalidRequestError):
        SourceFile("%%%", encoding="base64").data()
    with pytest.raises(InvalidRequestError):
        SourceFile("x", encoding="rot13")


def test_runtime_matching_like_piston():
    rt = Runtime("python", "3.11.2", ("py",))
    assert rt.matches("python", "*") and rt.matches("py", "3.11") and rt.matches("py", "3")
    assert rt.matches("python", "3.11.2")
    assert not rt.matches("python", "3.1") and not rt.matches("ruby", "*")


# Semver ranges as Piston (node-semver's `satisfies`) reads them.

_n = st.integers(min_value=0, max_value=30)


@given(_n, _n, _n, _n, _n)
def test_a_partial_version_is_an_x_range(a, b, c, x, y):
    version = f"{a}.{b}.{c}"
    assert satisfies(version, f"{x}.{y}") == ((a, b) == (x, y))
    assert satisfies(version, f"{x}.{y}.x") == ((a, b) == (x, y))
    assert satisfies(version, f"{x}") == (a == x)
    assert satisfies(version, version) and satisfies(version, "*")


@given(_n, _n, _n, _n, _n)
def test_caret_tilde_and_comparisons(a, b, c, x, y):
    version, v = f"{a}.{b}.{c}", (a, b, c)
    if x > 0:
        assert satisfies(version, f"^{x}.{y}") == (a == x and (b, c) >= (y, 0))
    assert satisfies(version, f"~{x}.{y}") == ((a, b) == (x, y))
    assert satisfies(version, f">={x}") == (v >= (x, 0, 0))
    assert satisfies(version, f">{x}.{y}") == (v >= (x, y + 1, 0))
    assert satisfies(version, f"<{x}.{y}") == (v < (x, y, 0))
    assert satisfies(version, f">={x} <{y}") == ((x, 0, 0) <= v < (y, 0, 0))
    assert satisfies(version, f"{x} || {y}") == (a in (x, y))


def test_piston_ranges_on_a_runtime():
    python = Runtime("python", "3.11.2", ("py",))
    for spec in ("3.11", "^3.11", "3.11.x", ">=3", "~3.11.1", "3.10 - 3.12", "*"):
        assert python.matches("py", spec), spec
    for spec in ("3.1", "^3.12", "<3.11", "3.11.3", "nonsense", ">=", "4"):
        assert not python.matches("python", spec), spec
    assert satisfies("0.2.5", "^0.2.3") and not satisfies("0.3.0", "^0.2.3")
