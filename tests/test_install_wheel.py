"""The wheel is the product: build the sdist and the wheel (from the sdist), install the wheel
(not editable) into a fresh venv per role, and run that role's smoke test there.

Fast and offline: `uv` builds and installs from its cache, which `scripts/setup` fills (it
installs a throwaway `app` venv from the index once); nothing here touches the network. Each
venv takes about a second. The headless demo in the `app` venv (about 30 s) runs only with
ASSESSIQ_INSTALL_DEMO=1 (`scripts/test-install` sets it); the always-run `app` check imports
every module there and runs `assessiq verify`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("assessiq/core/default_policy.toml", "assessiq/ui/static/yeditor/index.js",
           "assessiq/ui/static/video.js", "assessiq/ui/static/a11y.css",
           "assessiq/proctor/sample_photos/astronaut.png",
           "assessiq/proctor/sample_photos/grace_hopper.jpg", "signaling/static/join.html")
READY = re.compile(r"open (http://127\.0\.0\.1:\d+/\S+)")


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: it is in the dev extra (run scripts/setup)")
    return found


def _run(cmd: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=240,
                          **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`uv build`: the sdist, then the wheel built from that sdist (so the sdist is complete)."""
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT, src, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "node_modules", "__pycache__", "*.egg-info", "build", "dist",
        "artifacts", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"))
    r = _run([_uv(), "build", "--offline", "--quiet", "--out-dir", out, src])
    assert r.returncode == 0, "uv build failed (scripts/setup fills uv's cache):\n" + r.stderr
    (wheel,) = out.glob("assessiq-*.whl")
    (sdist,) = out.glob("assessiq-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


class Venvs:
    """Fresh venvs with the built wheel installed, one per role, made on first use."""

    def __init__(self, wheel: Path, root: Path) -> None:
        self.wheel, self.root = wheel, root
        self.made: dict[str, Path] = {}

    def __call__(self, role: str) -> Path:
        if role not in self.made:
            venv = self.root / role
            r = _run([_uv(), "venv", "--quiet", "--python", sys.executable, venv])
            assert r.returncode == 0, r.stderr
            spec = str(self.wheel) if role == "base" else f"{self.wheel}[{role}]"
            r = _run([_uv(), "pip", "install", "--offline", "--quiet", "--python",
                      venv / "bin" / "python", spec])
            assert r.returncode == 0, (
                f"installing {spec} offline from uv's cache failed; run scripts/setup, which "
                f"fills the cache (rm .venv/.assessiq-installed to force it):\n{r.stderr}")
            r = _run([_uv(), "pip", "check", "--python", venv / "bin" / "python"])
            assert r.returncode == 0, r.stdout + r.stderr
            self.made[role] = venv
        return self.made[role]


@pytest.fixture(scope="module")
def venvs(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    return Venvs(dist["wheel"], tmp_path_factory.mktemp("venvs"))


def _env(tmp: Path) -> dict[str, str]:
    """The environment without this test run's Python, venv, pytest and NiceGUI variables
    (NiceGUI switches to its screen-test mode when it sees pytest's)."""
    drop = ("PYTHON", "VIRTUAL_ENV", "PYTEST", "NICEGUI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "ASSESSIQ_DATA_DIR": str(tmp / "data"), "HOME": str(tmp),
            "UV_CACHE_DIR": _uv_cache()}  # HOME moves; uv's cache (filled by setup) must not


@functools.cache
def _uv_cache() -> str:
    r = _run([_uv(), "cache", "dir"])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _modules(venv: Path, *names: str) -> dict[str, bool]:
    code = ("import importlib.util, json, sys; print(json.dumps("
            "{m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))")
    r = _run([venv / "bin" / "python", "-c", code, *names])
    assert r.returncode == 0, r.stderr
    import json

    found: dict[str, bool] = json.loads(r.stdout)
    return found


@contextlib.contextmanager
def _serve(cmd: list[str | Path], tmp: Path) -> Iterator[str]:
    """Start an app command, wait for its "open http://…" line, yield that URL."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(tmp), cwd=tmp)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        for line in proc.stdout:
            lines.append(line)
            if (m := READY.search(line)) is not None:
                yield m.group(1)
                return
            assert time.monotonic() < deadline, "".join(lines)
        pytest.fail("the app ended before serving:\n" + "".join(lines))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _page(url: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(url, timeout=10)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert r.status_code == 200, r.text[:300]
    return r.text


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the artefacts -------------------------------------------------------------------------


def test_the_wheel_and_sdist_carry_the_static_files_policy_and_photos(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    assert set(SHIPPED) <= names
    # every file of the three packages, so a new static file cannot be left out unnoticed
    tree = {p.relative_to(ROOT).as_posix() for pkg in ("assessiq", "signaling", "sandbox")
            for p in (ROOT / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert tree - names == set()
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    with tarfile.open(dist["sdist"]) as tar:
        sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert set(SHIPPED) <= sdist


# ---- per role ------------------------------------------------------------------------------


def test_base_install_is_the_signaling_server_and_says_what_else_to_install(venvs, tmp_path):
    venv = venvs("base")
    assert _modules(venv, "cryptography", "nicegui", "cv2") == {
        "cryptography": False, "nicegui": False, "cv2": False}
    r = _run([venv / "bin" / "assessiq", "verify", "x.aiq"], env=_env(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip() == ("assessiq: checking a session file is not installed: "
                                "pip install 'assessiq[verify]'")
    port = _free_port()
    proc = subprocess.Popen([venv / "bin" / "assessiq-signaling", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(tmp_path))
    try:
        page = _page(f"http://127.0.0.1:{port}/join")
    finally:
        proc.terminate()
        proc.wait(10)
    assert "uvx --python 3.12" in page


def test_host_install_has_no_face_analysis_and_serves_its_app(venvs, tmp_path):
    venv = venvs("host")
    absent = ("mediapipe", "cv2", "jax", "scipy", "skimage", "matplotlib")
    assert _modules(venv, *absent) == dict.fromkeys(absent, False)
    r = _run([venv / "bin" / "assessiq", "join", "aiq1.x"], env=_env(tmp_path))
    assert (r.returncode, r.stderr.strip()) == (
        2, "assessiq: face analysis is not installed: pip install 'assessiq[candidate]'")
    cmd = [venv / "bin" / "assessiq", "host", "--no-browser", "--port", str(_free_port()),
           "--signaling", "ws://127.0.0.1:9/ws", "--camera", "synthetic", "--microphone", "none"]
    with _serve(cmd, tmp_path) as url:
        assert "AssessIQ" in _page(url)


def test_candidate_install_joins_by_web_link_and_shows_consent(dist, tmp_path):
    """The candidate's one command (`uv tool run`, i.e. `uvx`), which installs the wheel into
    a fresh environment of its own: the synthetic camera's scenes there (their photos come
    from the wheel: no scikit-image installed, scipy never imported), then `assessiq join`
    with an https invite link, up to the consent page.

    The command is the one README and the join page give, with two changes for this machine:
    the wheel comes from the build above instead of PyPI (--offline --find-links), and the
    Python is this one instead of `--python 3.12`."""
    uvx = [_uv(), "tool", "run", "--offline", "--find-links", dist["wheel"].parent,
           "--python", sys.executable, "--from", "assessiq[candidate]"]
    code = ("import importlib.util, sys\n"
            "assert not any(importlib.util.find_spec(m) for m in ('skimage', 'docker'))\n"
            "from assessiq.core.identity import Identity\n"
            "from assessiq.core.invite import make_invite\n"
            "from assessiq.proctor.synthetic import Scene, SyntheticCamera\n"
            "frame = SyntheticCamera([(1, 'present')]).render(Scene.TWO_FACES, 0)\n"
            "assert frame.shape == (480, 640, 3) and 'scipy' not in sys.modules\n"
            "print(make_invite(Identity.generate(), signaling='wss://sig.example.org/ws')"
            ".web_link())\n")
    r = _run([*uvx, "python", "-c", code], env=_env(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    link = r.stdout.strip().splitlines()[-1]
    assert link.startswith("https://sig.example.org/join#aiq1.")
    cmd = [*uvx, "assessiq", "join", link, "--no-browser", "--port", str(_free_port()),
           "--camera", "none", "--microphone", "none"]
    with _serve(cmd, tmp_path) as url:
        assert url.endswith("/join")
        assert "consent" in _page(url).lower()


def test_app_install_imports_every_module_and_verifies(venvs, tmp_path):
    venv = venvs("app")
    code = ("import importlib, pkgutil, assessiq, signaling, sandbox\n"
            "for pkg in (assessiq, signaling, sandbox):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        if not m.name.endswith('__main__'):\n"
            "            importlib.import_module(m.name)\n")
    r = _run([venv / "bin" / "python", "-c", code], env=_env(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run([venv / "bin" / "assessiq", "verify", tmp_path / "missing.aiq"], env=_env(tmp_path))
    assert r.returncode == 2 and "not installed" not in r.stderr


@pytest.mark.skipif(os.environ.get("ASSESSIQ_INSTALL_DEMO") != "1",
                    reason="the headless demo from the wheel takes ~30 s: scripts/test-install")
def test_app_install_runs_the_headless_demo(venvs, tmp_path):
    venv = venvs("app")
    out = tmp_path / "demo.aiq"
    r = _run([venv / "bin" / "assessiq", "demo", "--headless", "--no-media", "--seconds", "3",
              "--out", out], env=_env(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = _run([venv / "bin" / "assessiq", "verify", out], env=_env(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:]
