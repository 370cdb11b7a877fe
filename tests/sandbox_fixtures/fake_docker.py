"""A stand-in for the `docker` SDK client, for the launcher's logic only.

No Docker engine can run on the development and CI machines, so the launcher's start/reuse/error
paths are exercised against this object: it has the parts of `docker.DockerClient` the launcher
touches (`ping`, `containers.get/run`, `images.get`, `api.pull`, a container's `status`, `attrs`,
`start`, `reload`, `logs`) and raises the SDK's real exception classes. What the "container"
serves is up to the test: `on_start` is called when it starts (tests start a Piston contract
double there). The real-engine test in test_sandbox_launcher.py runs where Docker answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import docker.errors


@dataclass
class FakeContainer:
    name: str
    status: str = "running"
    host_port: int = 2000
    logs_text: bytes = b""
    on_start: Callable[[], object] | None = None
    fail_start: str | None = None
    status_after_reload: str | None = None
    id: str = "c0ffee"
    calls: list[str] = field(default_factory=list)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"HostConfig": {"PortBindings": {
            "2000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(self.host_port)}]}}}

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise docker.errors.APIError(self.fail_start)
        self.status = "running"
        if self.on_start:
            self.on_start()

    def reload(self) -> None:
        self.calls.append("reload")
        if self.status_after_reload:
            self.status = self.status_after_reload

    def logs(self, tail: int = 10) -> bytes:
        return self.logs_text


class FakeContainers:
    def __init__(self, owner: FakeDocker) -> None:
        self.owner = owner
        self.existing: dict[str, FakeContainer] = {}
        self.run_calls: list[tuple[str, dict[str, Any]]] = []
        self.run_error: Exception | None = None

    def get(self, name: str) -> FakeContainer:
        if name not in self.existing:
            raise docker.errors.NotFound(f"No such container: {name}")
        return self.existing[name]

    def run(self, image: str, **kwargs: Any) -> FakeContainer:
        self.run_calls.append((image, kwargs))
        if self.run_error is not None:
            raise self.run_error
        if image.rsplit(":", 1)[0] not in self.owner.images.present:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        port = kwargs["ports"]["2000/tcp"][1]
        container = FakeContainer(kwargs["name"], host_port=port, on_start=self.owner.on_start,
                                  status_after_reload=self.owner.status_after_run)
        self.existing[container.name] = container
        container.start()
        return container


class FakeImages:
    def __init__(self) -> None:
        self.present: set[str] = set()

    def get(self, ref: str) -> object:
        if ref.rsplit(":", 1)[0] not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return object()


class FakeApi:
    def __init__(self, owner: FakeDocker) -> None:
        self.owner = owner
        self.pull_events: list[dict[str, Any]] = []
        self.pull_error: Exception | None = None
        self.pulls: list[tuple[str, str | None]] = []

    def pull(self, repository: str, tag: str | None = None, stream: bool = False,
             decode: bool = False) -> Iterator[dict[str, Any]]:
        assert stream and decode, "the launcher reads the pull as a decoded stream"
        self.pulls.append((repository, tag))
        if self.pull_error is not None:
            raise self.pull_error
        yield from self.pull_events
        if not any("error" in e for e in self.pull_events):
            self.owner.images.present.add(repository)


class FakeDocker:
    """`docker.from_env()`'s result, as far as the launcher uses it."""

    def __init__(self, *, reachable: bool = True, on_start: Callable[[], object] | None = None
                 ) -> None:
        self.reachable = reachable
        self.on_start = on_start
        self.status_after_run: str | None = None
        self.containers = FakeContainers(self)
        self.images = FakeImages()
        self.api = FakeApi(self)

    def ping(self) -> bool:
        if not self.reachable:
            raise docker.errors.DockerException(
                "Error while fetching server API version: ('Connection aborted.', "
                "FileNotFoundError(2, 'No such file or directory'))")
        return True


def layer_events(layers: int = 3, size: int = 40 * 1024 * 1024) -> list[dict[str, Any]]:
    """A pull stream shaped like Docker's: header, per-layer download steps, footer."""
    events: list[dict[str, Any]] = [{"status": "Pulling from engineer-man/piston",
                                     "id": "latest"}]
    ids = [f"{i:012x}" for i in range(1, layers + 1)]
    events += [{"status": "Pulling fs layer", "progressDetail": {}, "id": i} for i in ids]
    for i in ids:
        for part in range(1, 5):
            events.append({"status": "Downloading", "id": i,
                           "progressDetail": {"current": size * part // 4, "total": size}})
        events.append({"status": "Download complete", "progressDetail": {}, "id": i})
        events.append({"status": "Pull complete", "progressDetail": {}, "id": i})
    events += [{"status": "Digest: sha256:" + "ab" * 32},
               {"status": "Status: Downloaded newer image for ghcr.io/engineer-man/piston"}]
    return events
