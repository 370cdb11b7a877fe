"""`python -m sandbox`: runs, prints, exits 0 when the run happened and 2 on user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.isolation import tool


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parent.parent)


@pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")
def test_run_json_and_text(tmp_path: Path):
    src = tmp_path / "echo.py"
    src.write_text("import sys\nprint(input().upper())\nsys.exit(4)\n")
    done = cli("run", str(src), "--language", "python", "--stdin", "abc", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["run"]["stdout"] == "ABC\n" and result["run"]["status"] == "RE"
    text = cli("run", str(src), "-l", "py", "--stdin", "xyz")
    assert text.returncode == 0 and "XYZ" in text.stdout and "status=RE" in text.stdout


@pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")
def test_runtimes_lists_python():
    done = cli("runtimes", "--json")
    assert done.returncode == 0
    assert "python" in {rt["language"] for rt in json.loads(done.stdout)}


@pytest.mark.parametrize("args", [
    ("run", "/nonexistent/x.py", "--language", "python"),
    ("run", __file__, "--language", "cobol"),
    ("run", __file__, "--language", "python", "--run-timeout", "0"),
])
def test_user_mistakes_are_one_line_and_exit_2(args):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_unreachable_piston_is_one_line():
    done = cli("runtimes", "--backend", "piston", "--piston-url", "http://127.0.0.1:9")
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach Piston")


def test_help_for_each_command():
    for args in (("--help",), ("run", "--help"), ("runtimes", "--help")):
        done = cli(*args)
        assert done.returncode == 0 and "usage:" in done.stdout
