"""The editor's browser bundle is the one its committed sources make, and needs no network.

assessiq/ui/static/yeditor/index.js is built by scripts/build-js from js/package-lock.json
and js/src/; its first line names their hashes. Changing either without rebuilding fails
here (rebuild with scripts/build-js).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "assessiq" / "ui" / "static" / "yeditor" / "index.js"


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_the_bundle_was_built_from_the_committed_lockfile_and_source() -> None:
    header = BUNDLE.read_text(encoding="utf-8").split("\n", 1)[0]
    lock = _short((ROOT / "js" / "package-lock.json").read_bytes())
    src = _short(b"".join(p.read_bytes() for p in sorted((ROOT / "js" / "src").glob("*.js"))))
    assert f"lock {lock};" in header and f"src {src};" in header, (
        f"{BUNDLE.name} is stale ({header!r}); rebuild it with scripts/build-js")


def test_the_bundle_loads_nothing_from_the_network() -> None:
    code = BUNDLE.read_text(encoding="utf-8")
    assert not re.search(r"""(?:import\s*\(?|from)\s*["'](?:https?:)?//""", code)
    assert (BUNDLE.parent / "LICENSES.txt").read_text().count("(MIT)") >= 10
