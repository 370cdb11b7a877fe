"""The command line: --help, config files and flags, running as a subprocess, light imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from signaling import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_python_m_signaling_help():
    result = run(sys.executable, "-m", "signaling", "--help")
    assert result.returncode == 0
    assert "--max-rooms-per-ip" in result.stdout and "/healthz" in result.stdout


def test_console_script_help():
    script = BIN / "assessiq-signaling"
    if not script.exists():
        found = shutil.which("assessiq-signaling")
        if found is None:
            pytest.skip("assessiq-signaling is not installed here (pip install -e .)")
        script = Path(found)
    result = run(str(script), "--help")
    assert result.returncode == 0 and "usage: assessiq-signaling" in result.stdout


BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("aiortc", "pycrdt", "nicegui", "mediapipe", "cryptography", "assessiq", "cv2",
               "zeroconf", "numpy")
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked import: " + name)
            return None
    sys.meta_path.insert(0, Block())
""")


def test_importable_and_runs_with_heavy_packages_blocked(tmp_path):
    code = BLOCKER + textwrap.dedent("""
        import asyncio
        import signaling, signaling.__main__, signaling.testing
        from signaling.testing import WsClient, running_server
        try:
            import aiortc
        except ImportError as exc:
            assert "blocked" in str(exc)
        else:
            raise SystemExit("the blocker did not block")
        async def main():
            async with running_server() as server:
                a = await WsClient.connect(server.port)
                b = await WsClient.connect(server.port)
                await a.join("room-blocked-imports-01", "host")
                await b.join("room-blocked-imports-01", "candidate")
                await a.expect("peer-joined")
                await a.send({"type": "relay", "data": "hi"})
                assert (await b.expect("relay"))["data"] == "hi"
        asyncio.run(main())
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       ("aiortc", "pycrdt", "nicegui", "mediapipe", "cryptography", "assessiq"))
        print("OK", heavy)
    """)
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK []"


def test_subprocess_server_serves_healthz_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "signaling.toml"
    config.write_text('host = "127.0.0.1"\nport = 0\nlog_level = "WARNING"\n'
                      "[limits]\nmax_rooms_per_ip = 3\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling", "--config", str(config), "--max-rooms", "7"],
        stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on ws://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.load(response) == {"status": "ok", "rooms": 0, "connections": 0}
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("content", "needle"), [
    ("port = 'eighty'", "port must be a whole number"),
    ("[limits]\nmax_rooms = -1", "max_rooms must be positive"),
    ("[limits]\nmax_roomz = 4", "unknown limit(s) max_roomz"),
    ("colour = 'blue'", "unknown key(s) colour"),
    ("host = [", "not valid TOML"),
    ("[limits]\nmax_message_bytes = 10\nhard_max_message_bytes = 5", "hard_max_message_bytes"),
    ("[limits]\nmessage_burst = 2.5", "must be a whole number"),
    ("log_level = 'LOUD'", "log_level must be"),
    ("log_level = 5", "log_level must be"),
    ("host = 5", "host must be"),
    ("limits = 3", "[limits] must be a table"),
    ("[limits]\nmax_rooms = '5'", "max_rooms must be a number"),
    ("[limits]\nmax_rooms = true", "max_rooms must be a number"),
])
def test_bad_config_is_one_line_error_exit_2(tmp_path, content, needle):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=None) as info:
        load_config(config)
    assert needle in str(info.value)
    result = run(sys.executable, "-m", "signaling", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_and_bad_flag(tmp_path):
    result = run(sys.executable, "-m", "signaling", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2 and "cannot read config file" in result.stderr
    result = run(sys.executable, "-m", "signaling", "--max-rooms", "0")
    assert result.returncode == 2 and "max_rooms must be positive" in result.stderr
    result = run(sys.executable, "-m", "signaling", "--port", "70000")
    assert result.returncode == 2 and "port must be" in result.stderr


def test_flags_override_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("port = 9000\n[limits]\nmax_rooms = 5\nidle_room_seconds = 60\n")
    loaded = load_config(config, {"port": 9001, "max_rooms": 6, "host": None})
    assert loaded.port == 9001 and loaded.host == "127.0.0.1"
    assert loaded.limits.max_rooms == 6 and loaded.limits.idle_room_seconds == 60


def test_port_in_use_is_a_one_line_error():
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(sys.executable, "-m", "signaling", "--port", str(port))
    assert result.returncode == 1 and "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_hold_no_payloads_tokens_or_room_ids():
    room = "secret-room-id-0123456789"
    payload = "PAYLOAD-must-not-be-logged-" + "z" * 40
    code = textwrap.dedent(f"""
        import asyncio, logging, sys
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        logging.getLogger("websockets.client").setLevel(logging.WARNING)  # the test's side
        from signaling.testing import WsClient, running_server
        async def main():
            async with running_server() as server:
                a = await WsClient.connect(server.port)
                b = await WsClient.connect(server.port)
                joined = await a.join({room!r}, "host")
                await b.join({room!r}, "candidate")
                await a.expect("peer-joined")
                await a.send({{"type": "relay", "data": {payload!r}}})
                assert (await b.expect("relay"))["data"] == {payload!r}
                c = await WsClient.connect(server.port)
                await c.join({room!r}, "host", resume=joined["resume"])
                print("TOKEN", joined["resume"])
        asyncio.run(main())
    """)
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("TOKEN ", 1)[1].strip()
    from signaling.rooms import room_tag
    assert f"room {room_tag(room)}" in result.stderr  # rooms are logged by their hash prefix
    for secret in (room, payload, "PAYLOAD", token):
        assert secret not in result.stderr
