"""The layering the design promises: the core runs without any adapter library, and the
sandbox without the app. Checked in a child process whose importer refuses those modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""


def run_blocked(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    script = f"BLOCKED = {blocked!r}\n" + BLOCKER + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)


def test_core_imports_without_adapters():
    result = run_blocked(
        ["aiortc", "aioice", "av", "nicegui", "mediapipe", "cv2", "zeroconf", "docker"],
        """
        import assessiq.core
        for m in pkgutil.iter_modules(assessiq.core.__path__):
            importlib.import_module("assessiq.core." + m.name)
        assert "pycrdt" in sys.modules  # the check ran the real imports
        print("ok", len(assessiq.core.__all__))
        """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_sandbox_imports_nothing_from_the_app():
    result = run_blocked(
        ["assessiq", "aiortc", "nicegui", "mediapipe", "pycrdt", "cryptography"],
        """
        import sandbox
        for m in pkgutil.iter_modules(sandbox.__path__):
            if m.name not in ("__main__", "piston_launcher"):  # CLI; docker is lazy there
                importlib.import_module("sandbox." + m.name)
        print("ok")
        """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
