"""The Piston Docker launcher: start, reuse, errors, health wait and runtime installs.

No Docker engine runs on the development and CI machines, so the launcher's Docker side is
exercised against `sandbox_fixtures/fake_docker.FakeDocker`, a stand-in for the `docker` SDK
client (the one place a stand-in is used: a real engine cannot run here). Everything after
the container "starts" is real: the launcher polls and installs over HTTP against the Piston
contract double on 127.0.0.1, which runs programs through the local backend. The test against
a real engine runs where one answers and is skipped with the reason elsewhere; the no-engine
error is checked for real here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from sandbox_fixtures.fake_docker import FakeContainer, FakeDocker, layer_events
from sandbox_fixtures.piston_double import RunningDouble

from sandbox import (
    BackendUnavailableError,
    DockerUnavailableError,
    ImagePullError,
    InvalidRequestError,
    LocalBackend,
    PistonError,
    RunRequest,
)
from sandbox.piston import PistonBackend
from sandbox.piston_launched import LaunchedPistonBackend
from sandbox.piston_launcher import IMAGE, PistonLauncher, pick_package
from sandbox.pull_progress import PullProgress


def _engine_available() -> str | None:
    try:
        docker.from_env().ping()
    except Exception as exc:  # any failure means: no engine to test against
        return f"no Docker engine reachable here ({type(exc).__name__})"
    return None


NO_ENGINE = _engine_available()


@pytest.fixture
def double() -> Iterator[RunningDouble]:
    """A Piston double bound to a port that refuses until the test starts it."""
    running = RunningDouble(LocalBackend())
    try:
        yield running
    finally:
        running.__exit__(None, None, None)


def _port(double: RunningDouble) -> int:
    return int(double.url.rsplit(":", 1)[1])


def _launcher(fake: FakeDocker, port: int, **kwargs: object) -> PistonLauncher:
    return PistonLauncher(port=port, client_factory=lambda: fake, poll_interval=0.1,
                          **kwargs)  # type: ignore[arg-type]


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.mark.skipif(NO_ENGINE is None, reason="a Docker engine is running here")
def test_no_engine_gives_a_clear_error() -> None:
    with pytest.raises(DockerUnavailableError, match="no Docker engine is reachable") as exc:
        PistonLauncher().ensure_container()
    _one_line(exc)


def test_unreachable_daemon_is_a_clear_error() -> None:
    fake = FakeDocker(reachable=False)
    with pytest.raises(DockerUnavailableError) as exc:
        _launcher(fake, 2000).ensure_container()
    assert "no Docker engine is reachable" in _one_line(exc)
    assert fake.containers.run_calls == []


async def test_absent_container_pull_start_wait_and_install(double: RunningDouble) -> None:
    fake = FakeDocker(on_start=lambda: double.start_later(0.6))
    fake.api.pull_events = layer_events()
    double.double.only_runtimes = {"python"}
    steps: list[str] = []
    url = await _launcher(fake, _port(double)).start([("python", "*"), ("ruby", "3")],
                                                     progress=steps.append)
    assert url == double.url
    assert fake.api.pulls == [(IMAGE, "latest")]
    [(image, kwargs)] = fake.containers.run_calls
    assert image == f"{IMAGE}:latest" and kwargs["privileged"] is True
    assert kwargs["ports"] == {"2000/tcp": ("127.0.0.1", _port(double))}
    assert "/piston/packages" in str(kwargs["volumes"])
    assert kwargs["environment"]["PISTON_OUTPUT_MAX_SIZE"] == "65536"  # 64 KiB, not 1 KiB
    assert int(kwargs["environment"]["PISTON_RUN_TIMEOUT"]) >= 5000  # the app's run timeout
    text = "\n".join(steps)
    assert f"pulling {IMAGE}:latest: 3/3 layers done, 120 of 120 MB so far" in text
    assert f"pulled {IMAGE}:latest (3 layers, 120 MB downloaded)" in text
    assert "waiting for Piston" in text and "Piston answers" in text
    assert "[1/2] python" in text and "already installed" in text
    assert "[2/2] installing ruby 3 ... done: ruby 3.0.1" in text
    assert double.double.install_log == ["ruby-3.0.1"]  # python was there: not reinstalled
    assert steps[-1] == f"Piston is ready at {double.url}"


async def test_running_container_is_reused(double: RunningDouble) -> None:
    fake = FakeDocker()
    fake.containers.existing["assessiq-piston"] = FakeContainer(
        "assessiq-piston", host_port=_port(double))
    double.__enter__()
    steps: list[str] = []
    await _launcher(fake, _port(double)).start(progress=steps.append)
    assert "reusing running container assessiq-piston" in steps
    assert fake.containers.run_calls == [] and fake.api.pulls == []
    assert fake.containers.existing["assessiq-piston"].calls.count("start") == 0


async def test_stopped_container_is_started(double: RunningDouble) -> None:
    fake = FakeDocker()
    fake.containers.existing["assessiq-piston"] = FakeContainer(
        "assessiq-piston", status="exited", host_port=_port(double),
        on_start=lambda: double.start_later(0.3))
    steps: list[str] = []
    await _launcher(fake, _port(double)).start(progress=steps.append)
    assert "starting stopped container assessiq-piston (it was exited)" in steps
    assert fake.containers.existing["assessiq-piston"].calls.count("start") == 1
    assert fake.containers.run_calls == []


def test_stopped_container_that_will_not_start() -> None:
    fake = FakeDocker()
    fake.containers.existing["assessiq-piston"] = FakeContainer(
        "assessiq-piston", status="exited", fail_start="driver failed programming external "
        "connectivity:\n Bind for 127.0.0.1:2000 failed: port is already allocated")
    with pytest.raises(BackendUnavailableError) as exc:
        _launcher(fake, 2000).ensure_container()
    assert "could not start container assessiq-piston" in _one_line(exc)
    assert "port is already allocated" in str(exc.value)


def test_container_on_another_port_is_named() -> None:
    fake = FakeDocker()
    fake.containers.existing["assessiq-piston"] = FakeContainer("assessiq-piston",
                                                                host_port=2358)
    with pytest.raises(BackendUnavailableError) as exc:
        _launcher(fake, 2000).ensure_container()
    text = _one_line(exc)
    assert "publishes Piston on port 2358, not 2000" in text and "docker rm -f" in text


@pytest.mark.parametrize("error", [
    docker.errors.NotFound("manifest unknown"),
    docker.errors.APIError("500 Server Error: toomanyrequests:\nrate limit"),
    ConnectionError("Connection reset by peer"),
])
def test_pull_failure_is_an_image_pull_error(error: Exception) -> None:
    fake = FakeDocker()
    fake.api.pull_error = error
    with pytest.raises(ImagePullError, match=f"could not pull {IMAGE}:latest") as exc:
        _launcher(fake, 2000).ensure_container()
    _one_line(exc)
    assert fake.containers.run_calls == []


def test_error_inside_the_pull_stream_is_an_image_pull_error() -> None:
    fake = FakeDocker()
    fake.api.pull_events = [*layer_events(1)[:3],
                            {"error": "denied: requested access to the resource is denied",
                             "errorDetail": {"message": "denied"}}]
    with pytest.raises(ImagePullError, match="requested access to the resource is denied"):
        _launcher(fake, 2000).ensure_container()
    assert fake.containers.run_calls == []


def test_container_run_failure_is_clear() -> None:
    fake = FakeDocker()
    fake.images.present.add(IMAGE)
    fake.containers.run_error = docker.errors.APIError(
        "Bind for 127.0.0.1:2000 failed: port is already allocated")
    with pytest.raises(BackendUnavailableError, match=r"could not start Piston: .*already"):
        _launcher(fake, 2000).ensure_container()
    assert fake.api.pulls == []  # the image was there


@pytest.mark.timeout(60)
async def test_health_wait_is_bounded() -> None:
    fake = FakeDocker()
    fake.images.present.add(IMAGE)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: every poll is refused
    try:
        launcher = _launcher(fake, sock.getsockname()[1], health_timeout=1.0)
        with pytest.raises(BackendUnavailableError) as exc:
            await launcher.start()
    finally:
        sock.close()
    assert "did not become healthy" in _one_line(exc) and "within 1 s" in str(exc.value)
    reloads = fake.containers.existing["assessiq-piston"].calls.count("reload")
    assert reloads >= 2  # it polled more than once before giving up


@pytest.mark.timeout(60)
async def test_container_that_dies_while_starting_is_reported_at_once() -> None:
    fake = FakeDocker()
    fake.images.present.add(IMAGE)
    fake.status_after_run = "exited"
    fake.containers.existing.clear()

    def crash_log() -> None:
        fake.containers.existing["assessiq-piston"].logs_text = (
            b"starting\nError: cgroup v2 is not enabled on this host\n")

    fake.on_start = crash_log
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        launcher = _launcher(fake, sock.getsockname()[1], health_timeout=600.0)
        with pytest.raises(BackendUnavailableError) as exc:
            await launcher.start()
    finally:
        sock.close()
    assert "stopped (exited) while starting: Error: cgroup v2 is not enabled" in _one_line(exc)


async def test_install_only_what_is_missing_and_pistons_errors(double: RunningDouble) -> None:
    double.__enter__()
    launcher = PistonLauncher(port=_port(double))
    double.double.only_runtimes = {"python"}
    steps: list[str] = []
    assert await launcher.install([("py", "*"), ("ruby", "*")], steps.append) == [
        "ruby-3.0.1"]
    assert await launcher.install([("ruby", "3.0")], steps.append) == []  # now installed
    assert double.double.install_log == ["ruby-3.0.1"]
    with pytest.raises(InvalidRequestError, match="Piston has no package for cobol"):
        await launcher.install([("cobol", "*")])
    double.double.packages.append(
        {"language": "gcc", "language_version": "10.2.0", "installed": False})
    double.double.only_runtimes = set()
    double.double.fail_install["gcc-10.2.0"] = "Checksum miss-match want: ab got: cd"
    with pytest.raises(PistonError) as exc:
        await launcher.install([("c++", "*")])
    assert exc.value.message == "Checksum miss-match want: ab got: cd"
    assert double.double.install_log[-1] == "gcc-10.2.0"  # c++ comes from Piston's gcc


def test_package_choice_follows_pistons_names_and_versions() -> None:
    from sandbox.piston import Package

    packages = [Package("node", "18.15.0", False), Package("node", "20.11.1", False),
                Package("gcc", "10.2.0", True), Package("python", "3.10.0", False),
                Package("python", "3.9.4", False)]
    assert pick_package(packages, "javascript", "*") == packages[1]
    assert pick_package(packages, "js", "18") == packages[0]
    assert pick_package(packages, "c", "*") == packages[2]
    assert pick_package(packages, "python", "*") == packages[3]  # 3.10 is newer than 3.9
    assert pick_package(packages, "python", "3.1") is None  # a prefix only at a dot
    assert pick_package(packages, "python", "^3.9") == packages[3]  # semver ranges, as Piston
    assert pick_package(packages, "python", "3.9.x") == packages[4]
    assert pick_package(packages, "python", ">=3 <3.10") == packages[4]
    assert pick_package(packages, "fortran", "*") == packages[2]  # gcc provides d and fortran
    assert pick_package(packages, "d", "10") == packages[2]
    assert pick_package(packages, "d", "12") is None
    assert pick_package(packages, "cobol", "*") is None


def test_pull_progress_lines() -> None:
    lines: list[str] = []
    meter = PullProgress("img:latest", lines.append, step=25 * 1024 * 1024)
    events = layer_events(layers=2, size=40 * 1024 * 1024)
    for event in events:
        meter.update(event)
    meter.finish()
    assert lines == [
        "pulling img:latest: 0/2 layers done, 30 of 40 MB so far",  # past 25 MB
        "pulling img:latest: 1/2 layers done, 40 of 40 MB so far",  # layer 1 done
        "pulling img:latest: 1/2 layers done, 50 of 80 MB so far",  # past 50 MB
        "pulling img:latest: 1/2 layers done, 80 of 80 MB so far",  # past 75 MB
        "pulling img:latest: 2/2 layers done, 80 of 80 MB so far",  # layer 2 done
        "pulled img:latest (2 layers, 80 MB downloaded)",
    ]
    assert len(events) == 17  # a line for about every third event, not every one


@pytest.mark.parametrize("url", ["http://10.1.2.3:2000", "https://127.0.0.1:2000",
                                 "http://127.0.0.1", "http://127.0.0.1:2000/api"])
def test_launch_url_must_be_local_http(url: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"http://127\.0\.0\.1:PORT"):
        PistonLauncher.for_url(url)
    assert PistonLauncher.for_url("http://localhost:2358").port == 2358


async def test_launched_backend_starts_once_and_installs_on_demand(double: RunningDouble) -> None:
    fake = FakeDocker(on_start=lambda: double.start_later(0.2))
    fake.images.present.add(IMAGE)
    double.double.only_runtimes = {"python"}
    double.double.packages.append(
        {"language": "node", "language_version": "20.11.1", "installed": False})
    steps: list[str] = []
    backend = LaunchedPistonBackend(_launcher(fake, _port(double)), progress=steps.append)
    double.double.index_reachable = False  # offline: asking for the package list kills Piston
    listed = {(rt.language, rt.runtime) for rt in await backend.runtimes()}
    assert ("javascript", "node") in listed  # installable on the first run
    assert ("fortran", "gcc") in listed
    assert all(path != "/packages" for _, path, _ in double.double.requests)
    double.double.index_reachable = True
    first = await backend.run(RunRequest.single("python", "print(6 * 7)"))
    assert first.run.stdout == "42\n"
    await backend.run(RunRequest.single("python", "print(1)"))
    assert len(fake.containers.run_calls) == 1 and steps.count(f"Piston is ready at "
                                                               f"{double.url}") == 1
    js = await backend.run(RunRequest.single("javascript", "console.log(2 + 3)"))
    assert double.double.install_log == ["node-20.11.1"]
    assert js.run.stdout == "5\n"


async def test_app_config_with_launch_uses_the_launcher(double: RunningDouble, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from assessiq.config import load_config

    fake = FakeDocker(on_start=double.__enter__)
    fake.images.present.add(IMAGE)
    monkeypatch.setattr(docker, "from_env", lambda **kw: fake)
    path = tmp_path / "config.toml"
    path.write_text(f'[sandbox]\nbackend = "piston"\npiston_url = "{double.url}"\n'
                    'launch = true\n')
    backend = load_config(path).sandbox_backend_instance()
    assert isinstance(backend, LaunchedPistonBackend)
    result = await backend.run(RunRequest.single("python", "print('via docker')"))
    assert result.run.stdout == "via docker\n"
    assert fake.containers.run_calls[0][1]["name"] == "assessiq-piston"


@pytest.mark.skipif(NO_ENGINE is not None, reason=NO_ENGINE or "")
@pytest.mark.timeout(900)
async def test_real_piston_container_runs_python() -> None:  # pragma: no cover - needs Docker
    launcher = PistonLauncher(container_name="assessiq-piston-test", port=2358,
                              health_timeout=300)
    steps: list[str] = []
    url = await launcher.start([("python", "*")], progress=steps.append)
    assert steps
    result = await PistonBackend(url).run(RunRequest.single("python", "print(6 * 7)"))
    assert result.run.stdout == "42\n"


async def test_install_never_lists_packages_and_an_offline_index_is_one_clear_line(
        double: RunningDouble) -> None:
    double.__enter__()
    launcher = PistonLauncher(port=_port(double))
    double.double.only_runtimes = {"python"}
    double.double.index_reachable = False
    steps: list[str] = []
    assert await launcher.install([("python", "3"), ("py", ">=3")], steps.append) == []
    assert all(path != "/packages" for _, path, _ in double.double.requests)
    with pytest.raises(BackendUnavailableError) as exc:
        await launcher.install([("ruby", "*")], steps.append)
    assert str(exc.value).startswith(
        "Piston's package index is unreachable from the Piston server")
    assert "python -m sandbox piston up --language" in str(exc.value)
    assert "\n" not in str(exc.value)


async def test_install_sends_the_range_and_reports_what_piston_chose(
        double: RunningDouble) -> None:
    double.__enter__()
    launcher = PistonLauncher(port=_port(double))
    double.double.only_runtimes = {"python"}
    double.double.packages.append(
        {"language": "ruby", "language_version": "3.2.2", "installed": False})
    steps: list[str] = []
    assert await launcher.install([("ruby", "~3.0")], steps.append) == ["ruby-3.0.1"]
    assert double.double.requests[-2] == ("POST", "/packages",
                                          {"language": "ruby", "version": "~3.0"})
    assert any("done: ruby 3.0.1" in step for step in steps)
