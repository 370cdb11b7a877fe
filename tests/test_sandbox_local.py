"""The local backend runs every installed language, and test cases report pass/fail/diff."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import LocalBackend, RunRequest, SourceFile, UnknownRuntimeError
from sandbox.isolation import tool
from sandbox.languages import installed
from sandbox.testcases import TestCase, output_diff, run_tests

pytestmark = pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")

HELLO = {
    "python": "import sys\nprint('hello', sys.stdin.readline().strip(), sys.argv[1:])\n",
    "javascript": "const l = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\n"
                  "console.log('hello', l, JSON.stringify(process.argv.slice(2)));\n",
    "c": "#include <stdio.h>\nint main(int c, char **v){ char b[64]; scanf(\"%63s\", b);\n"
         "printf(\"hello %s [%d]\\n\", b, c - 1); return 0; }\n",
    "c++": "#include <iostream>\n#include <string>\nint main(int c, char **v){ std::string s;\n"
           "std::cin >> s; std::cout << \"hello \" << s << \" [\" << c - 1 << \"]\\n\"; }\n",
    "java": "public class Main { public static void main(String[] a) throws Exception {\n"
            "  String l = new java.io.BufferedReader(new java.io.InputStreamReader(System.in))"
            ".readLine();\n  System.out.println(\"hello \" + l + \" [\" + a.length + \"]\"); } }\n",
}
LANGS = [lang.name for lang, _ in installed()]


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(isolation="bwrap")


@pytest.mark.parametrize("language", LANGS)
async def test_each_installed_language_runs(backend: LocalBackend, language: str) -> None:
    request = RunRequest(language=language, files=(SourceFile(HELLO[language]),),
                         stdin="world", args=("x",), run_timeout=10_000)
    result = await backend.run(request)
    assert result.run.ok, result.to_dict()
    assert result.run.stdout.startswith("hello world"), result.run.stdout
    assert result.run.cpu_time is not None and result.run.wall_time is not None
    assert (result.compile is not None) == (language in ("c", "c++"))
    # GNU time's peak RSS for every language and stage: present and plausible.
    for stage in (result.run, result.compile):
        if stage is not None:
            assert stage.memory is not None and 512 * 1024 < stage.memory < 1024 ** 3, stage


async def test_multiple_files_in_subdirectories(backend: LocalBackend) -> None:
    request = RunRequest(language="python", files=(
        SourceFile("from pkg.util import f\nprint(f())\n", "main.py"),
        SourceFile("", "pkg/__init__.py"),
        SourceFile("def f():\n    return 'from util'\n", "pkg/util.py")))
    result = await backend.run(request)
    assert result.run.stdout == "from util\n", result.to_dict()


async def test_unknown_language_and_version(backend: LocalBackend) -> None:
    with pytest.raises(UnknownRuntimeError, match=r"cobol-\* runtime is unknown"):
        await backend.run(RunRequest.single("cobol", "x"))
    with pytest.raises(UnknownRuntimeError, match=r"python-1\.0 runtime is unknown"):
        await backend.run(RunRequest.single("python", "x", version="1.0"))


def test_memory_is_reported_for_a_big_allocation(tmp_path: Path) -> None:
    # Through the CLI, as a user sees it.
    program = tmp_path / "big.py"
    program.write_text("x = bytearray(150 * 1024 * 1024)\nx[::4096] = b'1' * len(x[::4096])\n")
    cli = [sys.executable, "-m", "sandbox", "run", str(program), "--language", "python",
           "--json"]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=True)
    run = json.loads(out.stdout)["run"]
    assert run["code"] == 0 and run["status"] is None
    assert run["memory"] is not None and run["memory"] > 150 * 1024 * 1024


async def test_run_tests_reports_pass_fail_and_diff(backend: LocalBackend) -> None:
    submission = RunRequest.single("python", "n = int(input())\nprint(n * 2)\nprint('end')\n")
    tests = [TestCase("doubles", "21", "42\nend\n"),
             TestCase("trailing space ok", "1", "2  \nend\n\n"),
             TestCase("wrong", "5", "11\nend\n", hidden=True),
             TestCase("crash", "not a number", "0\nend\n", hidden=True)]
    outcomes = await run_tests(submission, tests, backend)
    assert [o.name for o in outcomes] == [t.name for t in tests]
    assert [o.passed for o in outcomes] == [True, True, False, False]
    assert outcomes[2].hidden and outcomes[2].actual == "10\nend\n"
    assert "-11" in outcomes[2].diff and "+10" in outcomes[2].diff
    assert outcomes[3].status == "RE" and outcomes[0].time is not None


def test_diff_is_readable_and_empty_on_match() -> None:
    assert output_diff("a\nb\n", "a\nb") == ""
    diff = output_diff("a\nb\n", "a\nc\n")
    assert diff.splitlines()[:2] == ["--- expected", "+++ actual"]
    assert "-b" in diff and "+c" in diff


@pytest.mark.parametrize(("bwrapped", "cpu_ms", "status"), [
    (True, 600.0, "TO"), (True, 400.0, "SG"), (False, 900.0, "TO"), (False, 600.0, "SG")])
def test_a_sigkill_near_the_cpu_limit_is_a_time_limit(bwrapped: bool, cpu_ms: float,
                                                      status: str) -> None:
    # The kernel's RLIMIT_CPU kill was reported by wait4 at 85-97 % of the limit on a loaded
    # machine; under bubblewrap nothing else can SIGKILL the namespace's pid 1.
    import signal

    from sandbox.isolation import Limits
    from sandbox.process import ProcessOutcome

    outcome = ProcessOutcome(wait_status=signal.SIGKILL, cpu_ms=cpu_ms,
                             extra={"status": b'{"child-pid": 42}\n'})
    limits = Limits(wall_ms=2000, cpu_seconds=1, address_space=1 << 30)
    result = LocalBackend()._result(outcome, limits, bwrapped=bwrapped)
    assert result.status == status and result.signal == "SIGKILL"
