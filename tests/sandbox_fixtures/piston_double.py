"""A contract double of Piston's v2 HTTP API, on 127.0.0.1 only.

Real Piston cannot run here (it needs privileged Docker and cgroup v2). This server follows the
contract of engineer-man/piston `api/src/api/v2.js` and `job.js`: the same validation order and
400 messages, 415 for non-JSON bodies, default limits (run 3000 ms, compile 10000 ms), the
`file<i>.code` default names, the `run = compile` answer when compilation fails, and the package
routes with their 404 text. Programs really run, through the local backend, so the stages and
statuses are real ones.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox import InvalidRequestError, LocalBackend, RunRequest

CONFIGURED = {"timeout": {"compile": 10000, "run": 3000},
              "cpu_time": {"compile": 10000, "run": 3000},
              "memory_limit": {"compile": -1, "run": -1}}
# What Piston's packages provide (their metadata.json `provides`), where the names differ.
PROVIDES = {"node": ["javascript"], "gcc": ["c", "c++"]}


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


class PistonDouble:
    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.packages: list[dict[str, Any]] = [
            {"language": "ruby", "language_version": "3.0.1", "installed": False},
            {"language": "python", "language_version": "3.12.0", "installed": False},
        ]
        # Test knobs: the packages POSTed, install failures (Piston's 500 with the error's
        # message), and which runtimes to list (None: all the local backend has).
        self.install_log: list[str] = []
        self.fail_install: dict[str, str] = {}
        self.only_runtimes: set[str] | None = None
        self.app = Starlette(routes=[
            Route("/api/v2/runtimes", self.runtimes, methods=["GET"]),
            Route("/api/v2/execute", self.execute, methods=["POST"]),
            Route("/api/v2/packages", self.list_packages, methods=["GET"]),
            Route("/api/v2/packages", self.install, methods=["POST"]),
            Route("/api/v2/packages", self.uninstall, methods=["DELETE"]),
        ])
        self.app.add_middleware(_RequireJson)

    async def _runtimes(self) -> list[Any]:
        return [rt for rt in await self.backend.runtimes()
                if self.only_runtimes is None or rt.language in self.only_runtimes]

    async def runtimes(self, request: Request) -> JSONResponse:
        return JSONResponse([rt.to_dict() for rt in await self._runtimes()])

    async def execute(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _bad("Invalid JSON")
        if not isinstance(body, dict):
            body = {}
        language, version, files = body.get("language"), body.get("version"), body.get("files")
        if not language or not isinstance(language, str):
            return _bad("language is required as a string")
        if not version or not isinstance(version, str):
            return _bad("version is required as a string")
        if not isinstance(files, list):
            return _bad("files is required as an array")
        for i, f in enumerate(files):
            if not isinstance(f, dict) or not isinstance(f.get("content"), str):
                return _bad(f"files[{i}].content is required as a string")
        runtimes = await self._runtimes()
        if not any(rt.matches(language, version) for rt in runtimes):
            return _bad(f"{language}-{version} runtime is unknown")
        if not any(f.get("encoding") in (None, "utf8") for f in files):
            return _bad("files must include at least one utf8 encoded file")
        for constraint in ("memory_limit", "timeout", "cpu_time"):
            for kind in ("compile", "run"):
                name = f"{kind}_{constraint}"
                value = body.get(name)
                configured = CONFIGURED[constraint][kind]
                if not value:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return _bad(f"If specified, {name} must be a number")
                if configured <= 0:
                    continue
                if value > configured:
                    return _bad(f"{name} cannot exceed the configured limit of {configured}")
                if value < 0:
                    return _bad(f"{name} must be non-negative")
        try:
            run_request = RunRequest.from_dict(body)
        except InvalidRequestError as exc:
            return _bad(str(exc))
        result = await self.backend.run(run_request)
        return JSONResponse(result.to_dict())

    async def list_packages(self, request: Request) -> JSONResponse:
        return JSONResponse(self.packages)

    def _find(self, body: Any) -> dict[str, Any] | None:
        body = body if isinstance(body, dict) else {}
        for pkg in self.packages:
            if pkg["language"] == body.get("language") and \
                    pkg["language_version"] == body.get("version"):
                return pkg
        return None

    async def install(self, request: Request) -> JSONResponse:
        body = await request.json()
        pkg = self._find(body)
        if pkg is None:
            return _bad(f"Requested package {body.get('language')}-{body.get('version')} "
                        "does not exist", 404)
        if pkg["installed"]:
            return _bad("Already installed", 500)
        name = f"{pkg['language']}-{pkg['language_version']}"
        self.install_log.append(name)
        if name in self.fail_install:
            return _bad(self.fail_install[name], 500)
        pkg["installed"] = True
        if self.only_runtimes is not None:  # the package's runtimes are listed from now on
            self.only_runtimes.update(PROVIDES.get(pkg["language"], [pkg["language"]]))
        return JSONResponse({"language": pkg["language"], "version": pkg["language_version"]})

    async def uninstall(self, request: Request) -> JSONResponse:
        body = await request.json()
        pkg = self._find(body)
        if pkg is None:
            return _bad(f"Requested package {body.get('language')}-{body.get('version')} "
                        "does not exist", 404)
        if not pkg["installed"]:
            return _bad("Not installed", 500)
        pkg["installed"] = False
        return JSONResponse({"language": pkg["language"], "version": pkg["language_version"]})


class _RequireJson:
    """Piston answers 415 to a body-carrying request that is not application/json."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(scope.get("headers") or [])
            if not headers.get(b"content-type", b"").startswith(b"application/json"):
                response = _bad("requests must be of type application/json", 415)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RunningDouble:
    """The double served by uvicorn in a thread on 127.0.0.1:<free port>."""

    def __init__(self, backend: LocalBackend) -> None:
        self.double = PistonDouble(backend)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(self.double.app, log_level="warning", lifespan="off",
                                loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> RunningDouble:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Piston double did not start")
            time.sleep(0.01)
        return self

    def start_later(self, delay: float) -> None:
        """Begin serving after `delay` seconds (until then the bound port refuses)."""
        timer = threading.Timer(delay, self.__enter__)
        timer.daemon = True
        timer.start()
        self._timer = timer

    def __exit__(self, *exc: object) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.join(timeout=10)
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
