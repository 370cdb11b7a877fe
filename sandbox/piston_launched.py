"""The Piston backend on a container this process starts or reuses.

`LaunchedPistonBackend` is what `python -m sandbox ... --launch` and the app's
`[sandbox] backend = "piston", launch = true` use: the first call starts (or reuses) the container
through `PistonLauncher` and waits until it answers; a run in a language Piston cannot run yet
installs its package first. Progress lines go to `progress` (the log by default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sandbox.models import RunRequest, RunResult, Runtime
from sandbox.piston import PistonBackend, PistonClient
from sandbox.piston_launcher import PROVIDES, PistonLauncher, Progress

log = logging.getLogger(__name__)


def _log_progress(message: str) -> None:
    log.info("piston: %s", message)


class LaunchedPistonBackend:
    """The `Backend` protocol over a Piston container started on demand."""

    name = "piston"

    def __init__(self, launcher: PistonLauncher | None = None, *,
                 languages: Sequence[str] = (), progress: Progress | None = None,
                 timeout: float = 60.0) -> None:
        self.launcher = launcher or PistonLauncher()
        self.languages = tuple(languages)
        self._progress = progress or _log_progress
        self._timeout = timeout
        self._url: str | None = None
        self._ready: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()

    async def ready(self) -> str:
        """Start or reuse the container and install `languages`; returns Piston's URL."""
        async with self._lock:
            if self._url is None:
                self._url = await self.launcher.start([(lang, "*") for lang in self.languages],
                                                      self._progress)
                self._ready.update((lang, "*") for lang in self.languages)
            return self._url

    async def _install_for(self, language: str, version: str) -> None:
        async with self._lock:
            if (language, version) not in self._ready:
                await self.launcher.install([(language, version)], self._progress)
                self._ready.add((language, version))

    async def run(self, request: RunRequest) -> RunResult:
        url = await self.ready()
        await self._install_for(request.language, request.version)
        return await PistonBackend(url, timeout=self._timeout).run(request)

    async def runtimes(self) -> list[Runtime]:
        """The installed runtimes, then each language AssessIQ knows that is not installed,
        with version "*" and `runtime` naming the package Piston installs on its first run.

        Only GET /api/v2/runtimes is asked: Piston's package list needs its package index,
        and a Piston that cannot reach the index dies answering it."""
        url = await self.ready()
        async with PistonClient(url, timeout=self._timeout) as client:
            installed = await client.runtimes()
        have = {rt.language for rt in installed}
        extra = [Runtime(language, "*", (), package)
                 for package, languages in PROVIDES.items() for language in languages
                 if language not in have]
        return installed + extra
