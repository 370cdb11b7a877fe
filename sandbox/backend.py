"""The one entry point: `await run(request)` on any backend with the same result shape."""

from __future__ import annotations

import sys
from typing import Protocol, runtime_checkable

from sandbox.errors import BackendUnavailableError
from sandbox.models import RunRequest, RunResult, Runtime


@runtime_checkable
class Backend(Protocol):
    """What every backend offers: Piston's execute and runtimes, as Python."""

    name: str

    async def run(self, request: RunRequest) -> RunResult: ...

    async def runtimes(self) -> list[Runtime]: ...


_default: Backend | None = None


def default_backend() -> Backend:
    """The local backend on Linux (made once); elsewhere there is no default."""
    global _default
    if _default is None:
        if not sys.platform.startswith("linux"):
            raise BackendUnavailableError(
                "the local sandbox needs Linux; use the Piston backend (Docker) instead")
        from sandbox.local import LocalBackend

        _default = LocalBackend()
    return _default


async def run(request: RunRequest, backend: Backend | None = None) -> RunResult:
    """Run `request` on `backend` (the default local backend when None)."""
    return await (backend or default_backend()).run(request)


async def runtimes(backend: Backend | None = None) -> list[Runtime]:
    """The languages and versions `backend` can run."""
    return await (backend or default_backend()).runtimes()
