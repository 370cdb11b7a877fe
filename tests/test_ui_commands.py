"""`assessiq host/join/replay`: user mistakes end with one line and exit 2, before serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assessiq.cli import main


@pytest.mark.parametrize("argv, message", [
    (["join", "hello"], "not an AssessIQ invite"),
    (["join", "aiq1.abc"], "truncated or damaged"),
    (["replay", "/nonexistent/session.aiq"], "no such file"),
    (["host", "--problem", "/nonexistent/p.md"], "cannot read problem file"),
    (["host", "--port", "0"], "--port must be 1..65535"),
    (["join", "--port", "70000", "--no-browser"], "--port must be 1..65535"),
])
def test_mistakes_are_one_line(argv: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out = capsys.readouterr()
    text = (out.err + out.out).strip()
    assert message in text and len(text.splitlines()) == 1


def test_replay_refuses_a_file_that_is_not_a_session(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "x.aiq"
    bogus.write_bytes(b"not sqlite at all" * 10)
    assert main(["replay", str(bogus)]) == 2
    assert "not a readable session file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["host", "join", "replay"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "127.0.0.1" in capsys.readouterr().out or command == "replay"


def test_replay_refuses_a_bad_port_in_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from core_factories import build_session

    built = build_session(tmp_path / "s.aiq", seed=5)
    assert main(["replay", str(built.path), "--port", "0", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--port must be 1..65535" in err and len(err.splitlines()) == 1


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on at 127.0.0.1 (this test's own socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["host", "join", "replay", "demo"])
def test_a_port_in_use_is_one_line_and_exit_2(command: str, taken_port: int, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--port", str(taken_port), "--no-browser"]
    if command == "replay":
        from core_factories import build_session

        argv.insert(1, str(build_session(tmp_path / "s.aiq", seed=6).path))
    assert main(argv) == 2
    out = capsys.readouterr()
    text = (out.err + out.out).strip()
    assert text == (f"assessiq: port {taken_port} on 127.0.0.1 is already in use (another "
                    "AssessIQ app?); choose another with --port")


def test_a_free_port_passes_the_check() -> None:
    from assessiq.ui.app import check_port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    check_port(port)  # free again: no error


@pytest.mark.parametrize("command", [["-m", "assessiq", "verify"], ["-m", "sandbox", "runtimes"]])
def test_a_closed_output_pipe_is_quiet(tmp_path: Path, command: list[str]) -> None:
    """`assessiq verify F | head`: the reader has gone before the first line is written."""
    from tests.core_factories import build_session

    args = [*command, str(build_session(tmp_path / "s.aiq", seed=1).path)] \
        if command[-1] == "verify" else command
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, cwd=Path(__file__).parent.parent)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
