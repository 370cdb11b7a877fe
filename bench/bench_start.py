"""Cold start: `assessiq join INVITE` to the consent page served, in a new process each time.

A run starts `assessiq join <https invite link> --no-browser` (camera and microphone `auto`,
as the candidate's one command runs it), reads the URL it prints and polls it until the
consent page comes back; the clock runs from the spawn to that response. Interleaved with
the same process's floor, `assessiq --version` (the interpreter and the CLI, nothing else).

"first start" repeats it once in a fresh venv per run, made by `uv pip install --offline` of
the candidate's wheel from uv's cache (uv, as `uvx` does, writes no bytecode, so the first
start compiles it): what a candidate waits the first time, download excluded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Row, median

AREA = "start"
REPO = Path(__file__).resolve().parent.parent
READY = re.compile(r"open (http://127\.0\.0\.1:\d+/\S+)")


def _invite() -> str:
    from assessiq.core.identity import Identity
    from assessiq.core.invite import make_invite

    link = make_invite(Identity.generate(), signaling="wss://signal.example.org/ws").web_link()
    assert link is not None
    return link


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: str) -> dict[str, str]:
    drop = ("PYTHON", "VIRTUAL_ENV", "PYTEST", "NICEGUI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "ASSESSIQ_DATA_DIR": data}


def join_to_consent(assessiq: list[str], invite: str, data: str) -> float:
    """Seconds from spawning `assessiq join` to the consent page's response."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*assessiq, "join", invite, "--no-browser", "--port",
                             str(_free_port())], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(data))
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if (m := READY.search(line)) is not None:
                url = m.group(1)
                break
        else:
            raise RuntimeError("assessiq join ended before serving: " + "".join(lines)[-500:])
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    r = client.get(url)
                except httpx.TransportError:
                    time.sleep(0.01)
                    continue
                if r.status_code == 200 and "consent" in r.text.lower():
                    return time.perf_counter() - t0
                raise RuntimeError(f"the join page answered {r.status_code}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def version(assessiq: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([*assessiq, "--version"], check=True, capture_output=True)
    return time.perf_counter() - t0


def fresh_venv(uv: str, wheel: Path, root: Path) -> list[str]:
    venv = Path(tempfile.mkdtemp(prefix="venv-", dir=root))
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--offline", "--python",
                    str(venv / "bin" / "python"), f"{wheel}[candidate]"], check=True)
    return [str(venv / "bin" / "assessiq")]


def run(quick: bool = False) -> list[Row]:
    n = 3 if quick else 9
    here = [sys.executable, "-m", "assessiq"]
    invite = _invite()
    with tempfile.TemporaryDirectory(prefix="aiq-bench-start-") as tmp:
        root = Path(tmp)
        warm, floor = [], []
        join_to_consent(here, invite, tmp)  # the file cache, as after any earlier start
        for _ in range(n):
            warm.append(join_to_consent(here, invite, tmp))
            floor.append(version(here))
        rows = [Row(AREA, "assessiq join → consent page served", median(warm), "s",
                    median(floor), "assessiq --version", goal="≤ 3 s",
                    note=f"median of {n}, new process each, interleaved")]
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        if uv is None:
            return rows
        dist = root / "dist"
        subprocess.run([uv, "build", "-q", "--offline", "--wheel", "--out-dir", str(dist),
                        str(REPO)], check=True)
        (wheel,) = dist.glob("assessiq-*.whl")
        first, second = [], []
        for _ in range(2 if quick else 3):
            cmd = fresh_venv(uv, wheel, root)
            first.append(join_to_consent(cmd, invite, tmp))
            second.append(join_to_consent(cmd, invite, tmp))
        rows.append(Row(AREA, "first start after a fresh install (compiles bytecode)",
                        median(first), "s", median(second), "second start, same venv",
                        goal="≤ 3 s", note=f"median of {len(first)} fresh uv venvs"))
    return rows
