"""The host's run service over the real local sandbox, a real SharedDoc and a real store."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from sandbox_fixtures.piston_double import RunningDouble

from assessiq.core.document import SharedDoc
from assessiq.core.runcheck import check_runs
from assessiq.core.store import SessionStore
from assessiq.runs import RunLimits, RunRefused, RunService
from sandbox import LocalBackend
from sandbox.piston import PistonBackend
from sandbox.testcases import TestCase

ECHO_SUM = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


PUBLIC = [{"name": "small", "stdin": "1 2", "expected": "3\n"},
          {"name": "neg", "stdin": "-1 -2", "expected": "-3\n"}]


@pytest.fixture
def doc() -> SharedDoc:
    return SharedDoc()


@pytest.fixture
def store(tmp_path):
    s = SessionStore.create(tmp_path / "s.aiq", {"session": "runs-test"})
    yield s
    s.close()


async def test_public_results_in_doc_hidden_only_in_store(doc, store):
    hidden = [TestCase("big", "1000000 2000000", "3000000\n", hidden=True),
              TestCase("wrong-on-purpose", "1 1", "3\n", hidden=True)]
    async with RunService(doc, store, backend=LocalBackend(), hidden_tests=hidden,
                          public_tests=PUBLIC) as runs:
        assert doc.public_tests() == PUBLIC  # shown in the document
        run_id = runs.submit(by="candidate", language="python", source=ECHO_SUM, stdin="4 5")
        await runs.wait(run_id)
    [run] = doc.runs()
    assert run["by"] == "candidate" and run["source"] == ECHO_SUM
    result = run["result"]
    assert result["run"]["stdout"] == "9\n" and result["run"]["code"] == 0
    assert [(t["name"], t["passed"]) for t in result["tests"]] == [("small", True), ("neg", True)]
    # Nothing about hidden tests reaches the shared document.
    assert "big" not in doc.snapshot_json() and "wrong-on-purpose" not in doc.snapshot_json()
    [entry] = store.private("hidden_results")
    outcomes = {t["name"]: t for t in entry["value"]["tests"]}
    assert outcomes["big"]["passed"] is True
    assert outcomes["wrong-on-purpose"]["passed"] is False
    assert "-3\n+2" in outcomes["wrong-on-purpose"]["diff"].replace("\n", "") or \
        "+2" in outcomes["wrong-on-purpose"]["diff"]
    [stored] = store.runs()
    assert stored["result"]["run"]["stdout"] == "9\n"
    # The sealed run keeps what it was graded against: the source and its digest, each
    # public test's input, expected and actual output, and only digests of the hidden ones.
    request, sealed = stored["request"], stored["result"]
    assert request["files"][0]["content"] == ECHO_SUM and request["language"] == "python"
    assert request["source_sha256"] == hashlib.sha256(ECHO_SUM.encode()).hexdigest()
    assert sealed["verdict"] == "passed"
    assert [(t["name"], t["stdin"], t["expected"], t["actual"], t["code"], t["passed"])
            for t in sealed["tests"]] == [("small", "1 2", "3\n", "3\n", 0, True),
                                          ("neg", "-1 -2", "-3\n", "-3\n", 0, True)]
    assert [h["passed"] for h in sealed["hidden"]] == [True, False]
    assert "1000000 2000000" not in json.dumps(stored) and "wrong-on-purpose" not in \
        json.dumps(stored)
    assert [h["case"] for h in sealed["hidden"]] == \
        [t["case"] for t in entry["value"]["tests"]]  # the private entry names the same cases
    [check] = check_runs(store.runs()).runs
    assert (check.ok, check.verdict, check.errors) == (True, "passed", [])


async def test_grades_against_its_own_copy_not_the_document(doc, store):
    """Whatever the document says the public tests are (a peer may have written it), the
    service grades against the tests the host set, and the record shows which."""
    async with RunService(doc, store, backend=LocalBackend(), public_tests=PUBLIC) as runs:
        doc.set_public_tests([{"name": "small", "stdin": "1 2", "expected": "-3\n"}],
                             origin="remote")
        assert runs.public_tests == PUBLIC
        run_id = runs.submit(by="candidate", language="python",
                             source="print(-3)\n")  # wrong, but matches the forged test
        await runs.wait(run_id)
    [run] = doc.runs()
    assert [(t["name"], t["passed"]) for t in run["result"]["tests"]] == \
        [("small", False), ("neg", True)]  # graded by the host's tests: 3, then -3
    assert run["result"]["verdict"] == "failed"
    [stored] = store.runs()
    assert stored["result"]["verdict"] == "failed"
    assert [t["expected"] for t in stored["result"]["tests"]] == ["3\n", "-3\n"]
    [check] = check_runs(store.runs()).runs
    assert (check.ok, check.verdict) == (True, "failed")


def test_public_tests_are_checked_before_anything_changes(doc):
    runs = RunService(doc, public_tests=PUBLIC)
    for bad in ([{"name": "x", "stdin": ""}], [{"name": "", "stdin": "", "expected": ""}],
                [PUBLIC[0], PUBLIC[0]], "nope"):
        with pytest.raises(ValueError):
            runs.set_public_tests(bad)  # type: ignore[arg-type]
    assert runs.public_tests == PUBLIC and doc.public_tests() == PUBLIC


async def test_a_run_the_host_cannot_run_is_recorded_as_an_error(doc, store):
    runs = RunService(doc, store, backend=PistonBackend(f"http://127.0.0.1:{_closed_port()}"),
                      public_tests=PUBLIC)
    async with runs:
        run_id = runs.submit(by="candidate", language="python", source="print(3)\n")
        await runs.wait(run_id)
    [stored] = store.runs()
    assert stored["result"]["verdict"] == "error" and stored["result"]["tests"] == []
    [check] = check_runs(store.runs()).runs
    assert (check.ok, check.verdict) == (True, "error")


async def test_hostile_run_times_out_and_service_goes_on(doc):
    limits = RunLimits(run_timeout_ms=1500)
    async with RunService(doc, backend=LocalBackend(), limits=limits) as runs:
        spin = runs.submit(by="candidate", language="python", source="while True: pass\n")
        ok = runs.submit(by="candidate", language="python", source="print('after')\n")
        await runs.wait(spin)
        await runs.wait(ok)
    results = {r["run_id"]: r["result"] for r in doc.runs()}
    assert results[spin]["run"]["status"] in ("TO", "SG")
    assert results[ok]["run"]["stdout"] == "after\n"


async def test_refusals_are_one_line_and_clear(doc):
    clock = Clock()
    runs = RunService(doc, backend=LocalBackend(),
                      limits=RunLimits(burst=2, per_minute=6, max_waiting=10), clock=clock)
    await runs.start()
    await runs.stop()  # keep the runtimes, run nothing: this test is about refusals
    assert "python" in runs.languages
    with pytest.raises(RunRefused, match="limited to 64 KiB"):
        runs.submit(by="c", language="python", source="x" * (65 * 1024))
    with pytest.raises(RunRefused, match="cannot run 'brainfudge'"):
        runs.submit(by="c", language="brainfudge", source="+")
    runs.submit(by="c", language="python", source="print(1)")
    runs.submit(by="c", language="python", source="print(2)")
    with pytest.raises(RunRefused, match="at most 6 a minute") as exc:
        runs.submit(by="c", language="python", source="print(3)")
    assert "\n" not in str(exc.value)
    # Another requester has its own budget; the first gets a token back after 10 s.
    runs.submit(by="h", language="python", source="print(4)")
    clock.t += 10.0
    runs.submit(by="c", language="python", source="print(5)")
    assert len(doc.runs()) == 4  # refused requests never reach the document


def test_queue_limit_per_requester(doc):
    runs = RunService(doc, limits=RunLimits(burst=10, per_minute=60, max_waiting=2))
    runs.submit(by="c", language="python", source="print(1)")
    runs.submit(by="c", language="python", source="print(2)")
    with pytest.raises(RunRefused, match="already waiting"):
        runs.submit(by="c", language="python", source="print(3)")


CPP_SUM = ("#include <iostream>\nint main(){long a,b; std::cin>>a>>b; "
           "std::cout<<a+b<<std::endl;}\n")
JS_SUM = ("const s = require('fs').readFileSync(0, 'utf8').split(/\\s+/).filter(Boolean);\n"
          "console.log(s.map(Number).reduce((a, b) => a + b, 0));\n")


def _installed(language: str) -> bool:
    from sandbox.languages import installed
    return any(lang.name == language for lang, _ in installed())


@pytest.mark.parametrize(("names", "source", "runtime"), [
    (("c++", "cpp", "C++"), CPP_SUM, "c++"),
    (("javascript", "js", "node"), JS_SUM, "javascript"),
], ids=["c++", "javascript"])
async def test_each_name_the_app_uses_runs_on_the_local_backend(names, source, runtime):
    """The setup screen and problem files say "c++" / "cpp" / "js"; every spelling reaches
    the runtime the host listed and runs (it used to be refused as 'cpp')."""
    if not _installed(runtime):
        pytest.skip(f"no {runtime} toolchain on this machine")
    doc = SharedDoc()  # no public tests: one compile per run
    async with RunService(doc, backend=LocalBackend(),
                          limits=RunLimits(burst=5, max_waiting=5)) as runs:
        ids = [runs.submit(by="host", language=name, source=source, stdin="40 2")
               for name in names]
        for run_id in ids:
            await runs.wait(run_id)
    results = {r["run_id"]: r for r in doc.runs()}
    for run_id in ids:
        run = results[run_id]
        assert run["language"] == runtime
        assert "error" not in run["result"], run["result"]
        assert run["result"]["run"]["stdout"] == "42\n", run["result"]
        assert run["result"]["language"] == runtime


async def test_language_names_resolve_through_the_listed_runtimes(doc):
    runs = RunService(doc, backend=LocalBackend())
    assert runs.language_for("CPP") == "c++"  # before the listing: the sandbox's own name
    await runs.start()
    await runs.stop()
    assert runs.backend_error is None
    assert runs.language_for(" Py ") == "python"
    with pytest.raises(RunRefused, match=r"cannot run 'cobol' \(it has: .*python") as info:
        runs.language_for("COBOL")
    assert "\n" not in str(info.value)


def _closed_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _overflowing(request: httpx.Request) -> httpx.Response:
    raise OverflowError("connect(): port must be 0-65535.")


@pytest.mark.parametrize("make", [
    lambda: PistonBackend(f"http://127.0.0.1:{_closed_port()}"),
    lambda: PistonBackend("http://127.0.0.1:2000", transport=httpx.MockTransport(
        _overflowing)),
], ids=["nothing-listens", "raw-transport-error"])
async def test_a_piston_that_cannot_be_reached_is_one_line_not_a_crash(doc, make):
    """From the config (`backend = "piston"`): the session starts, the reason is one line,
    and a run ends with that line as its result instead of an exception in the UI."""
    runs = RunService(doc, backend=make())
    async with runs:
        assert runs.runtimes == [] and runs.backend_error is not None
        assert runs.backend_error.startswith("cannot reach Piston at")
        assert "\n" not in runs.backend_error
        run_id = runs.submit(by="candidate", language="python", source="print(1)")
        await runs.wait(run_id)
    [run] = doc.runs()
    assert run["result"]["error"].startswith("cannot reach Piston at")
    assert "\n" not in run["result"]["error"]


async def test_a_piston_with_a_lower_configured_limit_runs_within_it(doc, store):
    """A stock Piston allows 3 s per run and refuses a request for more ("run_timeout cannot
    exceed the configured limit of 3000"): the session's 5 s limit is lowered to it instead
    of every run failing, and the sealed request says which limit applied."""
    with RunningDouble(LocalBackend(isolation="bwrap")) as piston:
        piston.double.configured["timeout"]["run"] = 3000
        runs = RunService(doc, store, backend=PistonBackend(piston.url), public_tests=PUBLIC)
        async with runs:
            run_id = runs.submit(by="candidate", language="python", source=ECHO_SUM)
            await runs.wait(run_id)
    [run] = doc.runs()
    assert run["result"]["verdict"] == "passed"
    [stored] = store.runs()
    assert stored["request"]["run_timeout"] == 3000
    assert [r[2].get("run_timeout") for r in piston.double.requests
            if r[1].endswith("/execute")][:2] == [5000, 3000]
