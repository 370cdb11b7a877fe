"""The Piston Docker launcher: a real engine where one runs; its clear error where none does."""

from __future__ import annotations

import pytest

from sandbox import DockerUnavailableError
from sandbox.piston import PistonBackend
from sandbox.piston_launcher import PistonLauncher


def _engine_available() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure means: no engine to test against
        return f"no Docker engine reachable here ({type(exc).__name__})"
    return None


NO_ENGINE = _engine_available()


@pytest.mark.skipif(NO_ENGINE is None, reason="a Docker engine is running here")
def test_no_engine_gives_a_clear_error():
    with pytest.raises(DockerUnavailableError, match="no Docker engine is reachable"):
        PistonLauncher().ensure_container()


@pytest.mark.skipif(NO_ENGINE is not None, reason=NO_ENGINE or "")
@pytest.mark.timeout(900)
async def test_real_piston_container_runs_python():  # pragma: no cover - needs Docker
    launcher = PistonLauncher(container_name="assessiq-piston-test", port=2358)
    steps: list[str] = []
    url = await launcher.start([("python", "*")], progress=steps.append)
    assert steps
    from sandbox import RunRequest

    result = await PistonBackend(url).run(RunRequest.single("python", "print(6 * 7)"))
    assert result.run.stdout == "42\n"
