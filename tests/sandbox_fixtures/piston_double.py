"""A contract double of Piston's v2 HTTP API, on 127.0.0.1 only.

Real Piston cannot run here (it needs privileged Docker and cgroup v2). This server follows
engineer-man/piston v3.1.1 (`api/src/api/v2.js`, `job.js`, `package.js`): the same validation
order and 400 messages, 415 for non-JSON bodies, default limits (run 3000 ms, compile 10000 ms),
the `file<i>.code` default names, the `run = compile` answer when compilation fails, and the
package routes with their 404 text. Programs really run, through the local backend, so the
stages and statuses are real ones; their results are then reshaped to what the real server
answers.

Checked against the real Piston v3.1.1 server (issue 17, run natively with isolate, python
3.11.2 and gcc 12.2.0 packages), the double now also does what it does:
1. a signal death is `RE`, code 128+N, signal null, "Exited with error status 139", with bash's
   "Segmentation fault" line in stderr (Piston runs programs through a bash `run` script);
2. output is capped at 1,024 bytes per stream (`PISTON_OUTPUT_MAX_SIZE`), `OL`/`EL`, signal
   SIGKILL, and stderr and output gain "Sandbox keeper received fatal signal 6". Piston keeps
   a stream as the chunks node reads from the pipe: the first chunk that would cross the cap is
   dropped whole, the program is killed, and nothing after it is kept. A chunk is whatever the
   program wrote since the last read, so what survives depends on timing: on the real server,
   a block-buffered program (Python or C writing to a pipe, e.g. 100 `print`s of 50 bytes) or
   one large write keeps 0 bytes (every run), 100 lines printed with `flush=True` kept 0, 50,
   350 or 550 bytes, and 1,000 bytes, a pause, then 1,000 more kept the first 1,000. The
   double cannot see the program's writes, so it takes chunks of `output_chunk` bytes (4,096:
   a C stdio block for a pipe; Python's is 8,192): with the 1 KiB cap an overflowing stream
   keeps nothing, which is what the real server does for block-buffered output and the most
   frequent result for flushed output. Set `output_chunk` smaller to model flushed writes;

3. malformed JSON is `400 {"stack": "SyntaxError..."}` and `files: [null]` is `400 {}`;
4. versions are semver ranges for execute and package install;
5. uninstalling what is not installed is `500 "<pkg>-<ver> is not installed"`. Every DELETE
   unregisters the first listed runtime the package registered, then removes the package's
   files: for gcc the first DELETE unregisters `c` (200), the second `c++`, the third `d`, the
   fourth `fortran` (each a 500 ENOENT, the files being gone), the fifth is "gcc-12.2.0 is not
   installed". Reinstalling registers all four again, so what stayed is listed twice: after
   two DELETEs `d` and `fortran` (issue 17's run), after three only `fortran` (the conformance
   run in docs/sandbox.md). DELETE, like install, reads the package index first;
6. gcc provides c, c++, d and fortran;
7. the configured limits (`configured`) are checked as the server's `PISTON_*` settings are;
8. with the package index unreachable (`index_reachable = False`), GET, POST or DELETE on
   /api/v2/packages kills the server: the connection closes with no answer and nothing listens
   afterwards;
9. a sandbox failure (`XX`) carries isolate's own text (`sandbox_failure` forces one).
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox import InvalidRequestError, LocalBackend, RunRequest
from sandbox.models import RunResult, Runtime, StageResult, parse_version, satisfies

CONFIGURED = {"timeout": {"compile": 10000, "run": 3000},
              "cpu_time": {"compile": 10000, "run": 3000},
              "memory_limit": {"compile": -1, "run": -1}}
OUTPUT_MAX_SIZE = 1024  # PISTON_OUTPUT_MAX_SIZE's default, bytes per stream
OUTPUT_CHUNK = 4096  # bytes per pipe read the double assumes (item 2 above)
# What Piston's packages provide (their metadata.json `provides`), where the names differ.
PROVIDES = {"node": ["javascript"], "gcc": ["c", "c++", "d", "fortran"]}
KEEPER = "Sandbox keeper received fatal signal 6\n"


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _version_key(version: str) -> tuple[int, int, int]:
    return parse_version(version) or (-1, -1, -1)


def _cap(text: str, limit: int, chunk: int) -> tuple[str, bool]:
    """What Piston keeps of a stream read in `chunk`-byte pieces: the whole pieces before the
    first that would take it over `limit` (that one and everything after are lost); and
    whether the stream overflowed."""
    data = text.encode()
    if len(data) <= limit:
        return text, False
    kept = (limit // chunk) * chunk
    return data[:kept].decode(errors="replace"), True


class PistonDouble:
    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.packages: list[dict[str, Any]] = [
            {"language": "ruby", "language_version": "3.0.1", "installed": False},
            {"language": "python", "language_version": "3.12.0", "installed": False},
        ]
        # Test knobs: the packages POSTed, install failures (Piston's 500 with the error's
        # message), which runtimes to list (None: all the local backend has), the server's
        # configured limits and output cap, whether its package index answers, an isolate
        # failure to report, and every request's JSON body.
        self.install_log: list[str] = []
        self.fail_install: dict[str, str] = {}
        self.only_runtimes: set[str] | None = None
        self.configured = copy.deepcopy(CONFIGURED)
        self.output_max_size = OUTPUT_MAX_SIZE
        self.index_reachable = True
        self.sandbox_failure: str | None = None
        self.requests: list[tuple[str, str, Any]] = []
        self.output_chunk = OUTPUT_CHUNK
        # The runtimes installs registered, in order, with the package that registered each
        # (listed after the local backend's, and in place of a local one of the same name).
        self.registered: list[tuple[str, Runtime]] = []
        self.crash: Callable[[], None] = lambda: None  # set by RunningDouble
        self.app = Starlette(routes=[
            Route("/api/v2/runtimes", self.runtimes, methods=["GET"]),
            Route("/api/v2/execute", self.execute, methods=["POST"]),
            Route("/api/v2/packages", self.list_packages, methods=["GET"]),
            Route("/api/v2/packages", self.install, methods=["POST"]),
            Route("/api/v2/packages", self.uninstall, methods=["DELETE"]),
        ])
        self.app.add_middleware(_RequireJson)

    async def _runtimes(self) -> list[Runtime]:
        registered = [rt for _, rt in self.registered]
        names = {rt.language for rt in registered}
        return [rt for rt in await self.backend.runtimes()
                if (self.only_runtimes is None or rt.language in self.only_runtimes)
                and rt.language not in names] + registered

    async def _hide(self, language: str) -> None:
        """Stop listing the local backend's runtime of that name."""
        if self.only_runtimes is None:
            self.only_runtimes = {rt.language for rt in await self.backend.runtimes()}
        self.only_runtimes.discard(language)

    async def runtimes(self, request: Request) -> JSONResponse:
        self.requests.append(("GET", "/runtimes", None))
        return JSONResponse([rt.to_dict() for rt in await self._runtimes()])

    async def _body(self, request: Request) -> Any:
        """The JSON body, or the 400 express's body parser gives malformed JSON."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return JSONResponse({"stack": f"SyntaxError: {exc}\n    at JSON.parse (<anonymous>)"},
                                status_code=400)
        self.requests.append((request.method, request.url.path.removeprefix("/api/v2"), body))
        return body

    async def execute(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
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
            if f is None:  # `file.content` of null throws; express answers the TypeError as {}
                return JSONResponse({}, status_code=400)
            if not isinstance(f, dict) or not isinstance(f.get("content"), str):
                return _bad(f"files[{i}].content is required as a string")
        found = sorted((rt for rt in await self._runtimes() if rt.matches(language, version)),
                       key=lambda rt: _version_key(rt.version), reverse=True)
        if not found:
            return _bad(f"{language}-{version} runtime is unknown")
        runtime = found[0]
        if not any(f.get("encoding") in (None, "utf8") for f in files):
            return _bad("files must include at least one utf8 encoded file")
        for constraint in ("memory_limit", "timeout", "cpu_time"):
            for kind in ("compile", "run"):
                name = f"{kind}_{constraint}"
                value = body.get(name)
                configured = self.configured[constraint][kind]
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
        local = dict(body, version="*")
        for kind in ("compile", "run"):  # an omitted limit is the configured one
            for constraint in ("timeout", "cpu_time", "memory_limit"):
                configured = self.configured[constraint][kind]
                if not local.get(f"{kind}_{constraint}") and configured > 0:
                    local[f"{kind}_{constraint}"] = configured
        try:
            run_request = RunRequest.from_dict(local)
        except InvalidRequestError as exc:
            return _bad(str(exc))
        if self.sandbox_failure is not None:
            stage = StageResult(status="XX", message=self.sandbox_failure)
            return JSONResponse({"language": runtime.language, "version": runtime.version,
                                 "run": stage.to_dict()})
        result = await self.backend.run(run_request)
        result = RunResult(runtime.language, runtime.version, self._reshape(result.run),
                           self._reshape(result.compile) if result.compile else None)
        return JSONResponse(result.to_dict())

    def _reshape(self, stage: StageResult) -> StageResult:
        """The local backend's stage as real Piston reports it (items 1, 2 and 9)."""
        if stage.status == "SG" and stage.signal:
            signum = signal.Signals[stage.signal]
            code = 128 + signum
            line = (f"/piston/packages/run: line 1:     2 {signal.strsignal(signum)}"
                    "      (core dumped) \"$@\"\n")
            return replace(stage, status="RE", code=code, signal=None,
                           message=f"Exited with error status {code}",
                           stderr=stage.stderr + line, output=stage.output + line)
        if stage.status == "XX" and stage.message:
            return replace(stage, message=stage.message.removeprefix("sandbox setup failed: "))
        stdout, over_out = _cap(stage.stdout, self.output_max_size, self.output_chunk)
        stderr, over_err = _cap(stage.stderr, self.output_max_size, self.output_chunk)
        if over_out or over_err:
            stream = "stdout" if over_out else "stderr"
            stderr += KEEPER
            return replace(stage, stdout=stdout, stderr=stderr, output=stdout + stderr,
                           status="OL" if over_out else "EL", code=None, signal="SIGKILL",
                           message=f"{stream} length exceeded")
        return stage

    async def list_packages(self, request: Request) -> JSONResponse:
        self.requests.append(("GET", "/packages", None))
        if not self.index_reachable:
            await self._die()
        return JSONResponse(self.packages)

    def _find(self, body: Any, *, installed: bool | None = None) -> dict[str, Any] | None:
        """The newest package of that language whose version satisfies the range."""
        body = body if isinstance(body, dict) else {}
        match = [pkg for pkg in self.packages
                 if pkg["language"] == body.get("language")
                 and satisfies(pkg["language_version"], str(body.get("version")))
                 and (installed is None or pkg["installed"] == installed)]
        return max(match, key=lambda p: _version_key(p["language_version"])) if match else None

    async def _die(self) -> None:
        """An unhandled fetch error of the package index ends the node process."""
        self.crash()
        for _ in range(5):  # let the closed connection be noticed; nothing is sent
            await asyncio.sleep(0)

    async def install(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        if not self.index_reachable:  # get_package fetches the index outside any try
            await self._die()
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
        owner = pkg["language"] if pkg["language"] in PROVIDES else None
        local = {rt.language: rt for rt in await self.backend.runtimes()}
        for language in PROVIDES.get(pkg["language"], [pkg["language"]]):
            # Appended even when still listed: what a DELETE left is then listed twice.
            rt = local.get(language)
            self.registered.append((pkg["language"], Runtime(
                language, rt.version if rt else pkg["language_version"],
                rt.aliases if rt else (), owner if owner else (rt.runtime if rt else None))))
        return JSONResponse({"language": pkg["language"], "version": pkg["language_version"]})

    async def uninstall(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        if not self.index_reachable:  # get_package fetches the index outside any try
            await self._die()
        pkg = self._find(body)
        if pkg is None:
            return _bad(f"Requested package {body.get('language')}-{body.get('version')} "
                        "does not exist", 404)
        name = f"{pkg['language']}-{pkg['language_version']}"
        mine = [i for i, (owner, _) in enumerate(self.registered) if owner == pkg["language"]]
        if not mine and not pkg["installed"]:
            return _bad(f"{name} is not installed", 500)
        if mine:  # the first runtime it registered is unregistered, one per DELETE
            _, gone = self.registered.pop(mine[0])
            if all(rt.language != gone.language for _, rt in self.registered):
                await self._hide(gone.language)
        else:  # installed before the double started: its local runtimes are listed
            await self._hide(PROVIDES.get(pkg["language"], [pkg["language"]])[0])
        if not pkg["installed"]:  # then the files are removed: already gone
            return _bad(f"ENOENT: no such file or directory, stat "
                        f"'/piston/packages/{pkg['language']}/{pkg['language_version']}'", 500)
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
        self.double.crash = self._crash

    def _crash(self) -> None:
        """Die as Piston's node process does: every connection closed unanswered, the port
        closed (called on the server's loop)."""
        for listener in self._server.servers:
            listener.close()  # stop listening now, not at the next shutdown poll
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        self._server.should_exit = True
        self._server.force_exit = True

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
