"""Start or reuse a local Piston container with the `docker` SDK and install runtimes.

Piston needs a privileged container (it runs isolate, which needs cgroup v2). The container
publishes its port on 127.0.0.1 only and keeps its packages in a named volume, so runtimes
survive restarts. Every step reports a line through `progress` (pull progress, "installing
python 3.12.0 ... done"); every failure is one `BackendUnavailableError` line (no engine, a
failed pull, a container that will not start or never answers) or Piston's own `message`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.errors import (
    BackendUnavailableError,
    DockerUnavailableError,
    ImagePullError,
    InvalidRequestError,
    PistonError,
)
from sandbox.models import satisfies
from sandbox.piston import Package, PistonClient
from sandbox.pull_progress import PullProgress

IMAGE = "ghcr.io/engineer-man/piston"
CONTAINER_PORT = "2000/tcp"
Progress = Callable[[str], None]
# Piston installs packages, and a package provides runtimes under other names: `node` gives
# javascript, `gcc` gives c, c++, d and fortran (Piston v3.1.1's gcc 12.2.0 package).
PACKAGE_FOR = {"javascript": "node", "js": "node", "c": "gcc", "c++": "gcc", "cpp": "gcc",
               "d": "gcc", "fortran": "gcc", "py": "python", "python3": "python"}
PROVIDES = {"python": ("python",), "node": ("javascript",), "gcc": ("c", "c++", "d", "fortran"),
            "java": ("java",)}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The server settings a launched container gets (Piston reads PISTON_<SETTING>). Stock Piston
# keeps 1 KiB per output stream and refuses a run_timeout over 3000 ms; an interview prints
# more than that (a traceback alone can pass 1 KiB) and the app asks for 5000 ms runs.
ENVIRONMENT = {"PISTON_OUTPUT_MAX_SIZE": str(64 * 1024),
               "PISTON_RUN_TIMEOUT": "10000", "PISTON_RUN_CPU_TIME": "10000"}


def _quiet(message: str) -> None:
    pass


def one_line(exc: object) -> str:
    """An exception's text on one line (Docker's errors carry newlines and response dumps)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def package_name(language: str) -> str:
    """The Piston package that provides `language`."""
    return PACKAGE_FOR.get(language.lower(), language.lower())


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.\-+]", version))


def pick_package(packages: Sequence[Package], language: str, version: str) -> Package | None:
    """The newest package for `language` whose version satisfies the semver range `version`
    (as Piston picks: `3.11` means 3.11.x, `^3`, `>=3`, "*")."""
    name = package_name(language)
    match = [p for p in packages if p.language == name and satisfies(p.language_version, version)]
    return max(match, key=lambda p: version_key(p.language_version)) if match else None


@dataclass
class PistonLauncher:
    """Where and how the container runs. `client_factory` makes the Docker client
    (default `docker.from_env`)."""

    image: str = IMAGE
    tag: str = "latest"
    container_name: str = "assessiq-piston"
    port: int = 2000
    volume: str = "assessiq-piston-packages"
    health_timeout: float = 60.0
    poll_interval: float = 0.5
    install_timeout: float = 900.0
    client_factory: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_url(cls, url: str, **kwargs: Any) -> PistonLauncher:
        """A launcher serving `url`, which must be http on this machine's loopback."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or parts.hostname not in LOOPBACK or port is None \
                or parts.path.strip("/"):
            raise InvalidRequestError(
                f"a launched Piston listens on http://127.0.0.1:PORT; {url!r} is not that")
        return cls(port=port, **kwargs)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _client(self) -> Any:
        try:
            import docker
            import docker.errors
            import requests
        except ImportError as exc:
            raise DockerUnavailableError(
                "the `docker` Python package is missing: pip install docker") from exc
        factory = self.client_factory or docker.from_env
        try:
            client = factory()
            client.ping()
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise DockerUnavailableError(
                "no Docker engine is reachable (is Docker installed and running, and may this "
                f"user use it?): {one_line(exc)}") from exc
        return client

    def ensure_container(self, progress: Progress = _quiet) -> Any:
        """Start (or reuse) the container; blocking. Returns the docker container object."""
        import docker.errors

        client = self._client()
        name = self.container_name
        try:
            container = client.containers.get(name)
        except docker.errors.NotFound:
            container = None
        except docker.errors.APIError as exc:
            raise DockerUnavailableError(
                f"Docker could not look up container {name}: {one_line(exc)}") from exc
        if container is not None:
            self._check_port(container)
            if container.status == "running":
                progress(f"reusing running container {name}")
                return container
            progress(f"starting stopped container {name} (it was {container.status})")
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise BackendUnavailableError(
                    f"could not start container {name}: {one_line(exc)}") from exc
            return container
        self._ensure_image(client, progress)
        progress(f"starting {self.image}:{self.tag} as {name} on 127.0.0.1:{self.port}")
        try:
            return client.containers.run(
                f"{self.image}:{self.tag}", name=name, detach=True, privileged=True,
                ports={CONTAINER_PORT: ("127.0.0.1", self.port)},
                volumes={self.volume: {"bind": "/piston/packages", "mode": "rw"}},
                tmpfs={"/piston/jobs": "exec,uid=1000,gid=1000,mode=711"},
                environment=dict(ENVIRONMENT),
                restart_policy={"Name": "unless-stopped"})
        except docker.errors.ImageNotFound as exc:
            raise ImagePullError(f"the image {self.image}:{self.tag} is gone: "
                                 f"{one_line(exc)}") from exc
        except docker.errors.APIError as exc:
            raise BackendUnavailableError(f"could not start Piston: {one_line(exc)}") from exc

    def _check_port(self, container: Any) -> None:
        bindings = ((container.attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
        ports = {str(b.get("HostPort")) for b in bindings.get(CONTAINER_PORT) or []
                 if isinstance(b, dict)}
        if ports and str(self.port) not in ports:
            other = sorted(ports)[0]
            raise BackendUnavailableError(
                f"container {self.container_name} publishes Piston on port {other}, not "
                f"{self.port}: use http://127.0.0.1:{other}, or remove it "
                f"(docker rm -f {self.container_name})")

    def _ensure_image(self, client: Any, progress: Progress) -> None:
        import docker.errors
        import requests

        ref = f"{self.image}:{self.tag}"
        try:
            client.images.get(ref)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockerUnavailableError(f"Docker could not look up {ref}: "
                                         f"{one_line(exc)}") from exc
        progress(f"pulling {ref} (first time only)")
        meter = PullProgress(ref, progress)
        try:
            for event in client.api.pull(self.image, tag=self.tag, stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise ImagePullError(f"could not pull {ref}: {one_line(event['error'])}")
                meter.update(event)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise ImagePullError(f"could not pull {ref}: {one_line(exc)}") from exc
        meter.finish()

    @staticmethod
    def _state(container: Any) -> tuple[str | None, str]:
        """The container's status now and its last log line ("" when unknown)."""
        try:
            container.reload()
            status = str(container.status)
        except Exception:  # any Docker failure here just means: unknown
            return None, ""
        try:
            lines = container.logs(tail=5).decode(errors="replace").strip().splitlines()
        except Exception:
            lines = []
        return status, (lines[-1].strip() if lines else "")

    async def wait_healthy(self, container: Any = None, progress: Progress = _quiet) -> None:
        """Poll GET /api/v2/runtimes until it answers; fail after `health_timeout`, or at once
        if the container stops."""
        deadline = time.monotonic() + self.health_timeout
        progress(f"waiting for Piston at {self.url} (up to {self.health_timeout:.0f} s)")
        while True:
            remaining = deadline - time.monotonic()
            try:
                async with PistonClient(self.url, timeout=max(0.2, min(5.0, remaining))) as c:
                    await c.runtimes()
                progress("Piston answers")
                return
            except (BackendUnavailableError, PistonError) as exc:
                last = exc
            if container is not None:
                status, log_line = await asyncio.to_thread(self._state, container)
                if status in ("exited", "dead"):
                    raise BackendUnavailableError(
                        f"the Piston container stopped ({status}) while starting"
                        + (f": {log_line}" if log_line else ""))
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"Piston did not become healthy at {self.url} within "
                    f"{self.health_timeout:g} s ({one_line(last)})")
            await asyncio.sleep(self.poll_interval)

    async def install(self, wanted: Sequence[tuple[str, str]],
                      progress: Progress = _quiet) -> list[str]:
        """Install the packages for the (language, version) pairs that Piston cannot run yet,
        one by one; returns the packages installed ("python-3.12.0").

        What is installed is read from GET /api/v2/runtimes; a missing one is installed by
        asking Piston for its package and version range (POST /api/v2/packages picks the
        newest match itself), so the package list (GET /api/v2/packages) is never fetched."""
        done: list[str] = []
        async with PistonClient(self.url, timeout=self.install_timeout) as client:
            runtimes = await client.runtimes()
            for i, (language, version) in enumerate(wanted, 1):
                step = f"[{i}/{len(wanted)}]"
                have = [rt for rt in runtimes if rt.matches(language, version)]
                if have:
                    progress(f"{step} {have[0].language} {have[0].version} already installed")
                    continue
                name = package_name(language)
                what = name if version == "*" else f"{name} {version}"
                progress(f"{step} installing {what} ...")
                began = time.monotonic()
                try:
                    answer = await client.install(name, version)
                except PistonError as exc:
                    if exc.status_code == 404:
                        raise InvalidRequestError(
                            f"Piston has no package for {language} (version {version})"
                        ) from exc
                    if exc.message == "Already installed":
                        progress(f"{step} {what} already installed")
                        continue
                    raise
                got = f"{answer.get('language', name)} {answer.get('version', version)}"
                progress(f"{step} installing {what} ... done: {got} "
                         f"({time.monotonic() - began:.1f} s)")
                done.append(got.replace(" ", "-"))
                runtimes = await client.runtimes()
        return done

    async def start(self, wanted: Sequence[tuple[str, str]] = (),
                    progress: Progress = _quiet) -> str:
        """Container up, healthy, runtimes installed; returns the URL for `PistonBackend`."""
        container = await asyncio.to_thread(self.ensure_container, progress)
        await self.wait_healthy(container, progress)
        if wanted:
            await self.install(wanted, progress)
        progress(f"Piston is ready at {self.url}")
        return self.url
