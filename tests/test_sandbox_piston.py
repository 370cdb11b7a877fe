"""The Piston client and backend against a contract double of Piston v2 on 127.0.0.1.

The double (tests/sandbox_fixtures/piston_double.py) follows Piston's v2 routes, validation and
messages and runs programs through the local backend; real Piston needs privileged Docker.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from sandbox_fixtures.piston_double import RunningDouble

from sandbox import (
    BackendUnavailableError,
    InvalidRequestError,
    LocalBackend,
    PistonError,
    RunRequest,
    SourceFile,
    run,
)
from sandbox.isolation import tool
from sandbox.piston import PistonBackend, PistonClient, check_piston_url

pytestmark = pytest.mark.skipif(tool("bwrap") is None, reason="the double runs code with bwrap")


@pytest.fixture(scope="module")
def server():
    with RunningDouble(LocalBackend(isolation="bwrap")) as running:
        yield running


async def test_runtimes_lists_languages(server):
    async with PistonClient(server.url) as client:
        runtimes = await client.runtimes()
    names = {rt.language for rt in runtimes}
    assert "python" in names
    python = next(rt for rt in runtimes if rt.language == "python")
    assert python.version.count(".") == 2 and "py" in python.aliases


async def test_execute_python_through_the_backend(server):
    backend = PistonBackend(server.url)
    result = await run(RunRequest.single("python", "print(input()[::-1])", stdin="abc"),
                       backend)
    assert result.language == "python"
    assert result.run.stdout == "cba\n" and result.run.code == 0 and result.run.status is None
    assert result.compile is None


async def test_execute_reports_runtime_error_status(server):
    async with PistonClient(server.url) as client:
        result = await client.execute(RunRequest.single("python", "raise SystemExit(3)"))
    assert result.run.status == "RE" and result.run.code == 3
    assert result.run.message == "Exited with error status 3"


@pytest.mark.skipif(tool("gcc") is None, reason="gcc is not installed")
async def test_compiled_language_has_both_stages(server):
    backend = PistonBackend(server.url)
    ok = await backend.run(RunRequest(
        language="c", files=(SourceFile('#include <stdio.h>\nint main(){puts("hi");}', "m.c"),)))
    assert ok.compile is not None and ok.compile.code == 0
    assert ok.run.stdout == "hi\n"
    broken = await backend.run(RunRequest.single("c", "int main( {"))
    assert broken.compile is not None and broken.compile.status == "RE"
    assert broken.run == broken.compile  # Piston repeats compile as run when it fails


async def test_timeout_status_over_http(server):
    async with PistonClient(server.url) as client:
        result = await client.execute(RunRequest.single("python", "while True: pass",
                                                        run_timeout=1500, run_cpu_time=1000))
    assert result.run.status == "TO" and result.run.signal == "SIGKILL"


async def test_unknown_runtime_is_a_400_with_pistons_message(server):
    async with PistonClient(server.url) as client:
        with pytest.raises(PistonError) as info:
            await client.execute(RunRequest.single("cobol", "x", version="9.9.9"))
    assert info.value.status_code == 400
    assert info.value.message == "cobol-9.9.9 runtime is unknown"


@pytest.mark.parametrize(("body", "message"), [
    ({"version": "*", "files": []}, "language is required as a string"),
    ({"language": "python", "files": []}, "version is required as a string"),
    ({"language": "python", "version": "*"}, "files is required as an array"),
    ({"language": "python", "version": "*", "files": [{"name": "a"}]},
     "files[0].content is required as a string"),
    ({"language": "python", "version": "*", "files": [{"content": "", "encoding": "base64"}]},
     "files must include at least one utf8 encoded file"),
    ({"language": "python", "version": "*", "files": [{"content": "1"}], "run_timeout": 99999},
     "run_timeout cannot exceed the configured limit of 3000"),
    ({"language": "python", "version": "*", "files": [{"content": "1"}], "run_timeout": "5"},
     "If specified, run_timeout must be a number"),
])
async def test_contract_400_messages(server, body, message):
    async with httpx.AsyncClient() as http:
        response = await http.post(server.url + "/api/v2/execute", json=body)
    assert response.status_code == 400
    assert response.json() == {"message": message}


async def test_non_json_body_is_415(server):
    async with httpx.AsyncClient() as http:
        response = await http.post(server.url + "/api/v2/execute", content=b"x",
                                   headers={"content-type": "text/plain"})
    assert response.status_code == 415


async def test_packages_list_install_uninstall(server):
    async with PistonClient(server.url) as client:
        before = {(p.language, p.language_version): p.installed for p in await client.packages()}
        assert before[("ruby", "3.0.1")] is False
        assert await client.install("ruby", "3.0.1") == {"language": "ruby", "version": "3.0.1"}
        after = {(p.language, p.language_version): p.installed for p in await client.packages()}
        assert after[("ruby", "3.0.1")] is True
        with pytest.raises(PistonError, match="Already installed"):
            await client.install("ruby", "3.0.1")
        await client.uninstall("ruby", "3.0.1")
        with pytest.raises(PistonError) as info:
            await client.install("brainfuck", "2.7.3")
    assert info.value.status_code == 404
    assert info.value.message == "Requested package brainfuck-2.7.3 does not exist"


async def test_unreachable_server_is_a_clear_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(BackendUnavailableError, match="cannot reach Piston"):
        await PistonBackend(f"http://127.0.0.1:{port}").runtimes()


@pytest.mark.parametrize("url", ["http://127.0.0.1:2000", "https://piston.example:443/base",
                                 "http://localhost", "http://[::1]:2000/"])
def test_good_piston_urls_pass(url):
    assert check_piston_url(url) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:0", "ws://x:1",
                                 "127.0.0.1:2000", "http://", "http://h:1/#frag", ""])
def test_bad_piston_urls_are_refused_up_front(url):
    with pytest.raises(InvalidRequestError, match="the Piston URL") as info:
        PistonBackend(url)
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidRequestError, match="the Piston URL"):
        PistonClient(url)


@pytest.mark.parametrize("raised", [
    OverflowError("connect(): port must be 0-65535."),
    ExceptionGroup("unhandled errors in a TaskGroup", [ConnectionRefusedError(111, "refused"),
                                                       OSError(101, "unreachable")]),
    OSError(113, "No route to host"),
])
async def test_raw_transport_errors_become_one_line(raised):
    """Transport failures httpx does not wrap (what a bad address raised from anyio's
    connect) reach the caller as one `BackendUnavailableError` line, via httpx's own mock
    transport seam."""
    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    backend = PistonBackend("http://127.0.0.1:2000", transport=httpx.MockTransport(fail))
    with pytest.raises(BackendUnavailableError, match="cannot reach Piston at") as info:
        await backend.runtimes()
    assert "\n" not in str(info.value)
