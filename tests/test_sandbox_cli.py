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


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:99999", "port must be a number from 1 to 65535"),
    ("http://127.0.0.1:0", "port must be a number from 1 to 65535"),
    ("http://127.0.0.1:http", "port must be a number from 1 to 65535"),
    ("ftp://127.0.0.1:2000", "must start with http:// or https://"),
    ("127.0.0.1:2000", "must start with http:// or https://"),
    ("http://:2000", "no valid host"),
    ("http://a b:2000", "no valid host"),
    ("http://127.0.0.1:2000/?x=1", "must not have a query"),
])
@pytest.mark.parametrize("command", ["runtimes", "run"])
def test_bad_piston_url_is_one_line_and_exit_2(url, words, command):
    args = ("run", __file__, "-l", "python") if command == "run" else ("runtimes",)
    done = cli(*args, "--backend", "piston", "--piston-url", url)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: the Piston URL") and words in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_help_for_each_command():
    for args in (("--help",), ("run", "--help"), ("runtimes", "--help"), ("piston", "--help"),
                 ("piston", "up", "--help")):
        done = cli(*args)
        assert done.returncode == 0 and "usage:" in done.stdout


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:  # any failure means: no engine
        return False
    return True


@pytest.mark.skipif(_docker_engine_answers(), reason="a Docker engine is running here")
@pytest.mark.parametrize("args", [
    ("piston", "up", "--language", "python"),
    ("run", __file__, "--language", "python", "--launch"),
    ("runtimes", "--launch"),
])
def test_launch_without_docker_is_one_line_and_exit_1(args):
    done = cli(*args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: no Docker engine is reachable")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args,words", [
    (("run", __file__, "-l", "python", "--launch", "--backend", "local"), "--launch starts"),
    (("run", __file__, "-l", "python", "--launch", "--piston-url", "https://127.0.0.1:2000"),
     "http://127.0.0.1:PORT"),
    (("piston", "up", "--language", "=3"), "give a language"),
    (("piston", "up", "--health-timeout", "0"), "must be positive"),
    (("piston", "up", "--piston-url", "http://127.0.0.1:2000/x"), "http://127.0.0.1:PORT"),
])
def test_launch_mistakes_are_one_line_and_exit_2(args, words):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.fixture
def piston_in_fake_docker(monkeypatch):
    """`docker.from_env()` answers with the launcher tests' Docker stand-in (no engine can run
    here), whose container start serves the Piston contract double on 127.0.0.1."""
    import docker
    from sandbox_fixtures.fake_docker import FakeDocker
    from sandbox_fixtures.piston_double import RunningDouble

    from sandbox import LocalBackend
    from sandbox.piston_launcher import IMAGE

    running = RunningDouble(LocalBackend())
    fake = FakeDocker(on_start=running.__enter__)
    fake.images.present.add(IMAGE)
    monkeypatch.setattr(docker, "from_env", lambda **kw: fake)
    try:
        yield running, fake
    finally:
        running.__exit__(None, None, None)


def test_piston_up_starts_and_installs_with_progress(piston_in_fake_docker, capsys):
    from sandbox.cli import main

    running, fake = piston_in_fake_docker
    running.double.only_runtimes = {"python"}
    assert main(["piston", "up", "-l", "python", "-l", "ruby=3.0",
                 "--piston-url", running.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("starting ghcr.io/engineer-man/piston:latest as assessiq-piston")
    assert "[2/2] installing ruby 3.0 ... done: ruby 3.0.1" in " ".join(out)
    assert out[-1] == f"Piston is ready at {running.url}"
    assert running.double.install_log == ["ruby-3.0.1"]
    assert main(["piston", "up", "-l", "ruby", "--piston-url", running.url]) == 0
    again = capsys.readouterr().out
    assert "reusing running container assessiq-piston" in again
    assert "ruby 3.0.1 already installed" in again and len(fake.containers.run_calls) == 1


def test_run_with_launch_keeps_json_on_stdout(piston_in_fake_docker, capsys, tmp_path):
    from sandbox.cli import main

    running, _ = piston_in_fake_docker
    src = tmp_path / "hi.py"
    src.write_text("print(input() * 2)\n")
    assert main(["run", str(src), "-l", "python", "--stdin", "ab", "--launch",
                 "--piston-url", running.url, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run"]["stdout"] == "abab\n"
    assert f"Piston is ready at {running.url}" in captured.err
