"""The shipped deploy files, rendered for a test, and a real coturn and TURN client to try them.

`render_turnserver_conf` and `render_signaling_toml` take `deploy/turnserver.conf` and
`deploy/signaling.toml` as shipped and change only what a test must: the secret placeholder,
and the addresses, ports and file paths given as overrides (every other line stays as
shipped). `run_coturn` starts `turnserver` with such a file, optionally inside a network
namespace; `turn_allocate` asks it for a relay allocation with a username and password, as
aioice does in a real connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
TEST_SECRET = "nat-test-secret-4b1d9a0c7e52f3a8"


def render_turnserver_conf(secret: str, *, drop: tuple[str, ...] = (), add: tuple[str, ...] = (),
                           **overrides: str | int | Path) -> str:
    """deploy/turnserver.conf with the secret filled in, `key=value` lines replaced (or
    appended when the file has no such key; keys are written with dashes), the exact lines
    in `drop` removed and the lines in `add` appended."""
    text = (DEPLOY / "turnserver.conf").read_text()
    assert "static-auth-secret=CHANGE_ME" in text and "use-auth-secret" in text
    text = text.replace("CHANGE_ME", secret)
    wanted = {k.replace("_", "-"): str(v) for k, v in overrides.items()}
    lines = []
    for line in text.splitlines():
        if line in drop:
            continue
        key = line.split("=", 1)[0].strip()
        if not line.startswith("#") and key in wanted:
            line = f"{key}={wanted.pop(key)}"
        lines.append(line)
    lines += [f"{k}={v}" for k, v in wanted.items()] + list(add)
    return "\n".join(lines) + "\n"


def render_signaling_toml(secret: str, urls: list[str], host: str | None = None) -> str:
    """deploy/signaling.toml with the secret filled in, the given TURN URLs, and `host`."""
    text = (DEPLOY / "signaling.toml").read_text()
    assert 'secret = "CHANGE_ME"' in text
    text = text.replace("CHANGE_ME", secret)
    start = text.index("urls = [")
    end = text.index("]", start) + 1
    text = text[:start] + "urls = [" + ", ".join(f'"{u}"' for u in urls) + "]" + text[end:]
    if host is not None:
        text = text.replace('host = "0.0.0.0"', f'host = "{host}"')
    return text


def free_udp_tcp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def turnserver_binary() -> str:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    return binary


@contextlib.contextmanager
def run_coturn(conf: Path, address: str, port: int, netns: str | None = None,
               log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """turnserver -c conf (inside `netns` when given), until it accepts TCP on address:port."""
    from tests.natlab import die_with_parent

    cmd = [turnserver_binary(), "-c", str(conf)]
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    cmd = die_with_parent(cmd)
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _accepts(address, port, netns):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"turnserver did not start (exit {proc.poll()}); see {log}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]


def _accepts(address: str, port: int, netns: str | None) -> bool:
    if netns is None:
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return True
        except OSError:
            return False
    from tests.natlab import tcp_accepts

    return tcp_accepts(netns, address, port)


@contextlib.asynccontextmanager
async def loopback_coturn(tmp_path: Path, secret: str = TEST_SECRET,
                          loopback_peers: bool = False) -> AsyncIterator[int]:
    """coturn on 127.0.0.1 with the shipped configuration (rendered); yields its port.
    With `loopback_peers` it may relay to 127.0.0.1 (the shipped file forbids it), so that
    two peers on this machine can meet through it."""
    port = free_udp_tcp_port()
    relay_min = 41000 + (port % 800) * 10
    conf = tmp_path / "turnserver.conf"
    conf.write_text(render_turnserver_conf(
        secret, listening_ip="127.0.0.1", relay_ip="127.0.0.1", listening_port=port,
        min_port=relay_min, max_port=relay_min + 9, log_file=tmp_path / "turn.log",
        pidfile=tmp_path / "turn.pid", userdb=tmp_path / "turndb",
        drop=("denied-peer-ip=127.0.0.0-127.255.255.255",) if loopback_peers else (),
        add=("allow-loopback-peers",) if loopback_peers else ()))
    with run_coturn(conf, "127.0.0.1", port):
        yield port


async def turn_allocate(address: str, port: int, username: str, password: str,
                        timeout: float = 5.0) -> tuple[str, int]:
    """A TURN allocation with these credentials (closed again); its relayed address.
    Raises aioice's `TransactionFailed` (e.g. 401) when the server refuses them."""
    from aioice import turn

    transport, _ = await asyncio.wait_for(turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=(address, port), username=username,
        password=password, lifetime=60), timeout)
    try:
        relayed = transport.get_extra_info("sockname")
        return str(relayed[0]), int(relayed[1])
    finally:
        transport.close()
