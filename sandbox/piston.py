"""An async client for Piston's v2 API, and the backend built on it.

Endpoints: GET /api/v2/runtimes, POST /api/v2/execute, GET/POST/DELETE /api/v2/packages.
Piston's 4xx/5xx answers become `PistonError` carrying its `message`; a server that cannot be
reached becomes `BackendUnavailableError`.
"""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.errors import BackendUnavailableError, InvalidRequestError, PistonError
from sandbox.models import RunRequest, RunResult, Runtime, StageResult

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:2000"
# Piston v3.1.1 fetches its package index for GET and POST /api/v2/packages; when the index
# cannot be reached (any offline deployment) the fetch error is unhandled and the whole server
# process dies, so the client sees the connection close unanswered.
INDEX_UNREACHABLE = (
    "Piston's package index is unreachable from the Piston server (asking for it stopped the "
    "server); install runtimes with `python -m sandbox piston up --language LANG` where the "
    "index can be reached, or put built packages in Piston's packages directory")


_HOST = re.compile(r"[A-Za-z0-9.\-_:%]+")


def check_piston_url(url: str) -> str:
    """`url` if it can be Piston's base URL (http or https, a host, a port in 1..65535, no
    query); otherwise `InvalidRequestError` with a one-line reason."""
    if not isinstance(url, str):
        raise InvalidRequestError("the Piston URL must be text")
    parts = urlsplit(url.strip())
    shown = url if len(url) <= 80 else url[:77] + "..."
    if parts.scheme not in ("http", "https"):
        raise InvalidRequestError(
            f"the Piston URL must start with http:// or https:// (got {shown!r})")
    try:
        port = parts.port
    except ValueError:
        raise InvalidRequestError(
            f"the Piston URL's port must be a number from 1 to 65535 (got {shown!r})") from None
    if port == 0:
        raise InvalidRequestError(
            f"the Piston URL's port must be a number from 1 to 65535 (got {shown!r})")
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        raise InvalidRequestError(f"the Piston URL has no valid host (got {shown!r})")
    if parts.query or parts.fragment:
        raise InvalidRequestError(f"the Piston URL must not have a query or fragment "
                                  f"(got {shown!r})")
    return url.strip()


def _one_line(exc: BaseException) -> str:
    """An exception (or the first of a group) as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


KEEPER_LINE = "Sandbox keeper received fatal signal 6\n"
OUTPUT_CAP_NOTE = ("output over Piston's limit of 1 KiB per stream; the server's "
                   "PISTON_OUTPUT_MAX_SIZE raises it")


def _signal_death(stage: StageResult) -> int | None:
    """The signal that killed the program when Piston hides it: Piston v3.1.1 runs every
    program through a bash `run` script, so a death by signal N comes back as status `RE`,
    code 128+N, signal null, with bash's line for it ("... Segmentation fault ...") in stderr.
    The bash line tells it from a program that exits with status 128+N itself."""
    if stage.status != "RE" or stage.signal is not None or stage.code is None \
            or not 128 < stage.code < 128 + 65:
        return None
    try:
        signum = signal.Signals(stage.code - 128)
    except ValueError:
        return None
    text = signal.strsignal(signum)
    tail = stage.stderr.splitlines()[-3:]
    return int(signum) if text and any(text in line for line in tail) else None


def from_piston(stage: StageResult) -> StageResult:
    """A Piston stage reported as the local backend reports it (documented in
    docs/sandbox.md): a signal death hidden as `RE` 128+N becomes `SG` with the signal, and
    the message says Piston gave it; `OL`/`EL` say why the output stopped, without isolate's
    keeper line."""
    signum = _signal_death(stage)
    if signum is not None:
        return replace(stage, status="SG", signal=signal.Signals(signum).name, code=None,
                       message=f"Caught fatal signal {signum} (Piston reported exit status "
                               f"{stage.code})")
    if stage.status == "XX" and stage.message:  # isolate's own text, e.g. a cgroup file
        return replace(stage, message=f"Piston's sandbox (isolate) failed: {stage.message}")
    if stage.status in ("OL", "EL"):
        base = stage.message or ("stdout" if stage.status == "OL" else "stderr") + \
            " length exceeded"
        return replace(stage, stderr=stage.stderr.replace(KEEPER_LINE, ""),
                       output=stage.output.replace(KEEPER_LINE, ""),
                       message=f"{base}: {OUTPUT_CAP_NOTE}")
    return stage


def _error_text(response: httpx.Response) -> str:
    """Piston's reason for a 4xx/5xx: its `message`; for what express itself refused (a body
    it could not parse answers `{"stack": "SyntaxError..."}`, a thrown TypeError `{}`), the
    stack's first line or a plain statement."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            return str(data["message"])
        if isinstance(data.get("stack"), str) and data["stack"].strip():
            return str(data["stack"]).strip().splitlines()[0][:200]
        if not data:
            return f"Piston refused the request without a reason ({response.reason_phrase})"
    return response.reason_phrase or "error"


@dataclass(frozen=True)
class Package:
    """One entry of GET /api/v2/packages."""

    language: str
    language_version: str
    installed: bool


class PistonClient:
    """Talks to one Piston server. Use as `async with PistonClient(url) as client:`."""

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = check_piston_url(base_url).rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url + "/api/v2", timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> PistonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendUnavailableError(
                f"Piston at {self.base_url} did not answer in time") from exc
        except (httpx.HTTPError, OSError, ValueError, OverflowError, ExceptionGroup) as exc:
            # httpx wraps most transport failures; a few (an odd address, a failed connect
            # inside anyio's happy-eyeballs group) arrive raw: all are "cannot reach".
            raise BackendUnavailableError(
                f"cannot reach Piston at {self.base_url}: {_one_line(exc)}") from exc
        if response.status_code >= 400:
            raise PistonError(response.status_code, _error_text(response))
        try:
            return response.json()
        except ValueError as exc:
            raise PistonError(response.status_code, "the answer is not JSON") from exc

    async def runtimes(self) -> list[Runtime]:
        data = await self._call("GET", "/runtimes")
        if not isinstance(data, list):
            raise PistonError(200, "runtimes is not a list")
        return [Runtime.from_dict(item) for item in data]

    async def execute(self, request: RunRequest) -> RunResult:
        """Run `request`; stages come back through `from_piston` (signal deaths as `SG`,
        output caps explained)."""
        result = RunResult.from_dict(await self._call("POST", "/execute", request.to_dict()))
        if result.compile is None:
            return replace(result, run=from_piston(result.run))
        compiled = from_piston(result.compile)
        ran = compiled if result.run == result.compile else from_piston(result.run)
        return replace(result, run=ran, compile=compiled)

    async def _package_call(self, method: str, body: dict[str, Any] | None = None) -> Any:
        """A call on /packages, whose unanswered close means the index is unreachable."""
        try:
            return await self._call(method, "/packages", body)
        except BackendUnavailableError as exc:
            if isinstance(exc.__cause__, httpx.RemoteProtocolError):
                raise BackendUnavailableError(INDEX_UNREACHABLE) from exc
            raise

    async def packages(self) -> list[Package]:
        """Every package in Piston's index. Prefer `runtimes()`: this needs the index, and a
        Piston that cannot reach it dies answering (`INDEX_UNREACHABLE`)."""
        data = await self._package_call("GET")
        if not isinstance(data, list):
            raise PistonError(200, "packages is not a list")
        return [Package(str(p.get("language")), str(p.get("language_version")),
                        bool(p.get("installed"))) for p in data if isinstance(p, dict)]

    async def install(self, language: str, version: str) -> dict[str, Any]:
        result = await self._package_call("POST", {"language": language, "version": version})
        return result if isinstance(result, dict) else {}

    async def uninstall(self, language: str, version: str) -> dict[str, Any]:
        """Remove a package. Piston v3.1.1 answers 500 "<pkg> is not installed" for one that is
        not. Each removal unregisters only the first language the package still has listed
        (gcc provides four), and every removal after the first fails with ENOENT, the files
        being gone (while one of its languages is still listed): that answer becomes a clear
        one."""
        try:
            result = await self._package_call("DELETE",
                                              {"language": language, "version": version})
        except PistonError as exc:
            if exc.status_code == 500 and exc.message.startswith("ENOENT"):
                raise PistonError(500, (
                    f"{language}-{version} is already removed from Piston's disk, but Piston "
                    "still lists some of the languages it provided (each removal unregisters "
                    "one); "
                    f"restart Piston to list its runtimes afresh ({exc.message})")) from exc
            raise
        return result if isinstance(result, dict) else {}


class PistonBackend:
    """The `Backend` protocol over a Piston server."""

    name = "piston"

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = check_piston_url(base_url)
        self._timeout = timeout
        self._transport = transport

    def client(self) -> PistonClient:
        return PistonClient(self.base_url, timeout=self._timeout, transport=self._transport)

    async def run(self, request: RunRequest) -> RunResult:
        async with self.client() as client:
            return await client.execute(request)

    async def runtimes(self) -> list[Runtime]:
        async with self.client() as client:
            return await client.runtimes()
