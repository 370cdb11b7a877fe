"""Start or reuse a local Piston container with the `docker` SDK and install runtimes.

Piston needs a privileged container (it runs isolate, which needs cgroup v2). The container
publishes its port on 127.0.0.1 only and keeps its packages in a named volume, so runtimes
survive restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.errors import BackendUnavailableError, DockerUnavailableError, ImagePullError
from sandbox.piston import PistonClient

IMAGE = "ghcr.io/engineer-man/piston"
Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


@dataclass
class PistonLauncher:
    """Where and how the container runs."""

    image: str = IMAGE
    container_name: str = "assessiq-piston"
    port: int = 2000
    volume: str = "assessiq-piston-packages"
    health_timeout: float = 60.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _docker(self) -> Any:
        try:
            import docker
            import docker.errors
        except ImportError as exc:
            raise DockerUnavailableError(
                "the `docker` Python package is missing: pip install docker") from exc
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            raise DockerUnavailableError(
                "no Docker engine is reachable (is Docker installed and running, and may this "
                f"user use it?): {exc}") from exc
        return client

    def ensure_container(self, progress: Progress = _quiet) -> str:
        """Start (or reuse) the container; blocking. Returns the container id."""
        import docker.errors

        client = self._docker()
        try:
            container = client.containers.get(self.container_name)
        except docker.errors.NotFound:
            container = None
        if container is not None:
            if container.status != "running":
                progress(f"starting existing container {self.container_name}")
                container.start()
            else:
                progress(f"reusing running container {self.container_name}")
            return str(container.id)
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            progress(f"pulling {self.image} (first time only)")
            try:
                client.images.pull(self.image, tag="latest")
            except docker.errors.APIError as exc:
                raise ImagePullError(f"could not pull {self.image}: {exc}") from exc
        progress(f"starting {self.image} as {self.container_name}")
        try:
            container = client.containers.run(
                self.image, name=self.container_name, detach=True, privileged=True,
                ports={"2000/tcp": ("127.0.0.1", self.port)},
                volumes={self.volume: {"bind": "/piston/packages", "mode": "rw"}},
                tmpfs={"/piston/jobs": "exec,uid=1000,gid=1000,mode=711"},
                restart_policy={"Name": "unless-stopped"})
        except docker.errors.APIError as exc:
            raise BackendUnavailableError(f"could not start Piston: {exc}") from exc
        return str(container.id)

    async def wait_healthy(self, progress: Progress = _quiet) -> None:
        """Poll GET /api/v2/runtimes until it answers, or fail after `health_timeout`."""
        deadline = time.monotonic() + self.health_timeout
        progress(f"waiting for Piston at {self.url}")
        while True:
            try:
                async with PistonClient(self.url, timeout=5.0) as client:
                    await client.runtimes()
                    return
            except BackendUnavailableError:
                if time.monotonic() > deadline:
                    raise BackendUnavailableError(
                        f"Piston did not become healthy at {self.url} within "
                        f"{self.health_timeout:.0f} s") from None
                await asyncio.sleep(0.5)

    async def install(self, wanted: list[tuple[str, str]], progress: Progress = _quiet) -> None:
        """Install the (language, version) packages not yet installed, one by one."""
        async with PistonClient(self.url, timeout=600.0) as client:
            packages = await client.packages()
            for i, (language, version) in enumerate(wanted, 1):
                match = [p for p in packages if p.language == language
                         and (version == "*" or p.language_version.startswith(version))]
                if not match:
                    raise BackendUnavailableError(
                        f"Piston has no package {language}-{version}")
                newest = sorted(match, key=lambda p: p.language_version)[-1]
                if any(p.installed for p in match):
                    progress(f"[{i}/{len(wanted)}] {language} already installed")
                    continue
                progress(f"[{i}/{len(wanted)}] installing {language}-"
                         f"{newest.language_version}")
                await client.install(language, newest.language_version)

    async def start(self, wanted: list[tuple[str, str]] | None = None,
                    progress: Progress = _quiet) -> str:
        """Container up, healthy, runtimes installed; returns the URL for `PistonBackend`."""
        await asyncio.to_thread(self.ensure_container, progress)
        await self.wait_healthy(progress)
        if wanted:
            await self.install(wanted, progress)
        return self.url
