"""The TOML configuration: defaults, a full file, and one-line errors for bad ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assessiq.config import EXAMPLE, ConfigError, load_config


def test_missing_file_means_defaults(tmp_path):
    config = load_config(tmp_path / "absent.toml")
    assert config.signaling_url is None and config.ice_servers == ()
    assert config.sandbox_backend == "local"
    assert config.peer_config().rtc_configuration().iceServers == []


def test_the_example_parses_and_a_full_file_is_used(tmp_path):
    (tmp_path / "example.toml").write_text(EXAMPLE)
    assert load_config(tmp_path / "example.toml").signaling_url is None
    path = tmp_path / "c.toml"
    path.write_text(
        '[signaling]\nurl = "wss://sig.example.org/ws"\n'
        '[ice]\nrelay_only = true\nservers = [{ url = "stun:127.0.0.1:3478" },\n'
        '  { url = "turn:127.0.0.1:3478", username = "u", credential = "p", share = true }]\n'
        '[sandbox]\nbackend = "piston"\npiston_url = "http://127.0.0.1:2000"\n'
        '[policy]\nfile = "~/policy.toml"\n')
    config = load_config(path)
    assert config.signaling_url == "wss://sig.example.org/ws"
    assert config.sandbox_backend == "piston" and config.policy_file is not None
    rtc = config.peer_config().rtc_configuration()
    assert [s.urls for s in rtc.iceServers] == ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478"]
    assert rtc.iceTransportPolicy.value == "relay"
    # Only a server marked share = true may go to the candidate with its credential.
    assert [s.share for s in config.peer_config().ice_servers] == [False, True]


@pytest.mark.parametrize("text,words", [
    ("not toml [", "not valid TOML"),
    ("signaling = 3", "[signaling] must be a table"),
    ("[nope]\n", "unknown section"),
    ('[signaling]\nurl = "http://x"', "ws:// or wss://"),
    ('[signaling]\nurl = 5', "url must be a str"),
    ('[ice]\nservers = "stun:x"', "list of tables"),
    ('[ice]\nservers = [{ username = "u" }]', "needs a url"),
    ('[ice]\nservers = [{ url = "http://x" }]', "stun:, turn: or turns:"),
    ('[ice]\nservers = [{ url = "turn:127.0.0.1:3478" }]', "username and a credential"),
    ('[ice]\nrelay_only = "yes"', "relay_only must be a bool"),
    ('[ice]\nservers = [{ url = "stun:127.0.0.1:99999999" }]', "port of an ICE server URL"),
    ('[ice]\nservers = [{ url = "stun:127.0.0.1:0" }]', "port of an ICE server URL"),
    ('[ice]\nservers = [{ url = "stun:127.0.0.1", share = "yes" }]', "share must be a bool"),
    ('[sandbox]\nbackend = "docker"', "backend must be"),
    ('[sandbox]\nbackend = "piston"\nlaunch = "yes"', "launch must be a bool"),
    ('[sandbox]\nlaunch = true', 'launch = true needs backend = "piston"'),
    ('[sandbox]\nbackend = "piston"\nlaunch = true\npiston_url = "http://10.0.0.9:2000"',
     "http://127.0.0.1:PORT"),
    ('[sandbox]\nbackend = "piston"\npiston_url = "http://127.0.0.1:99999"', "piston_url"),
    ('[sandbox]\npiston_url = "ftp://127.0.0.1:2000"', "piston_url"),
])
def test_bad_files_give_one_line_errors(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_cli_path_init_show(tmp_path):
    env = {"ASSESSIQ_CONFIG": str(tmp_path / "cfg" / "config.toml"), "PATH": "/usr/bin:/bin"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "assessiq", "config", *args],
                              capture_output=True, text=True, env=env, timeout=60)

    assert cli("path").stdout.strip() == env["ASSESSIQ_CONFIG"]
    assert cli("init").returncode == 0
    again = cli("init")
    assert again.returncode == 2 and "not overwriting" in again.stderr
    shown = cli("show")
    assert shown.returncode == 0 and '"sandbox_backend": "local"' in shown.stdout
    (tmp_path / "cfg" / "config.toml").write_text("[ice]\nservers = 1\n")
    broken = cli("show")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "list of tables" in broken.stderr


@pytest.mark.parametrize("argv", [["host", "--no-browser"], ["join", "--no-browser"]])
def test_apps_refuse_a_broken_config_in_one_line(tmp_path, monkeypatch, capsys, argv):
    from assessiq.cli import main

    bad = tmp_path / "config.toml"
    bad.write_text('[sandbox]\nbackend = "docker"\n')
    monkeypatch.setenv("ASSESSIQ_CONFIG", str(bad))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "backend must be" in err and len(err.splitlines()) == 1


def test_config_names_the_sandbox_backend(tmp_path):
    from sandbox.piston import PistonBackend

    path = tmp_path / "c.toml"
    path.write_text('[sandbox]\nbackend = "piston"\npiston_url = "http://127.0.0.1:2000"\n')
    backend = load_config(path).sandbox_backend_instance()
    assert isinstance(backend, PistonBackend) and backend.base_url == "http://127.0.0.1:2000"
    assert load_config(tmp_path / "none.toml").sandbox_backend_instance() is None


def test_config_launch_names_the_launched_piston_backend(tmp_path):
    from sandbox.piston_launched import LaunchedPistonBackend

    path = tmp_path / "c.toml"
    path.write_text('[sandbox]\nbackend = "piston"\npiston_url = "http://127.0.0.1:2358"\n'
                    "launch = true\n")
    config = load_config(path)
    assert config.piston_launch is True
    backend = config.sandbox_backend_instance()
    assert isinstance(backend, LaunchedPistonBackend) and backend.launcher.port == 2358
    path.write_text('[sandbox]\nbackend = "piston"\nlaunch = false\n')
    assert load_config(path).piston_launch is False
