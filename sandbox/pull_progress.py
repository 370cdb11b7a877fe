"""Turns Docker's pull event stream into a few readable progress lines.

Docker reports per layer: `Pulling fs layer`, `Downloading` (with `progressDetail.current` and
`total` bytes), `Download complete`, `Extracting`, `Pull complete` or `Already exists`; a
layer's size is known only once it downloads. This says something when a layer is done, at
every further `step` bytes downloaded, and when the pull ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MB = 1024 * 1024
_DOWNLOADED = ("Download complete", "Pull complete", "Already exists")
_FINISHED = ("Pull complete", "Already exists")


class PullProgress:
    """Feed it every event of one pull; it calls `progress` with a line now and then."""

    def __init__(self, ref: str, progress: Callable[[str], None], step: int = 50 * MB) -> None:
        self.ref = ref
        self._progress = progress
        self._step = step
        self._bytes: dict[str, tuple[int, int]] = {}  # layer id -> (current, total)
        self._layers: set[str] = set()
        self._complete: set[str] = set()
        self._reported = 0  # steps of downloaded bytes said so far
        self.lines = 0

    def _say(self, line: str) -> None:
        self.lines += 1
        self._progress(line)

    def update(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        status, layer = str(event.get("status") or ""), event.get("id")
        if not isinstance(layer, str) or status.startswith("Pulling from"):
            return  # the stream's header ("latest: Pulling from ...") and footer lines
        self._layers.add(layer)
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and isinstance(detail, dict):
            current, total = detail.get("current"), detail.get("total")
            if isinstance(current, int) and isinstance(total, int) and total > 0:
                self._bytes[layer] = (min(current, total), total)
        elif status in _DOWNLOADED and layer in self._bytes:
            total = self._bytes[layer][1]
            self._bytes[layer] = (total, total)
        steps = sum(c for c, _ in self._bytes.values()) // self._step
        finished = status in _FINISHED and layer not in self._complete
        if finished:
            self._complete.add(layer)
        if finished or steps > self._reported:
            self._reported = max(steps, self._reported)
            done = sum(c for c, _ in self._bytes.values())
            known = sum(t for _, t in self._bytes.values())
            self._say(f"pulling {self.ref}: {len(self._complete)}/{len(self._layers)} layers "
                      f"done, {done / MB:.0f} of {known / MB:.0f} MB so far")

    def finish(self) -> None:
        total = sum(t for _, t in self._bytes.values())
        self._say(f"pulled {self.ref} ({len(self._layers)} layers, {total / MB:.0f} MB "
                  "downloaded)")
