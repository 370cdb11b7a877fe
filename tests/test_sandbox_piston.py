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
from sandbox.models import StageResult
from sandbox.piston import PistonBackend, PistonClient, check_piston_url, from_piston

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


# What the real Piston v3.1.1 server answers (issue 17), reproduced by the double.

SEGFAULT = "import ctypes\nctypes.string_at(0)"


@pytest.fixture
def fresh():
    """A double of its own, for tests that change the server's settings or packages."""
    with RunningDouble(LocalBackend(isolation="bwrap")) as running:
        yield running


async def _post(url: str, path: str, body: object) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url + "/api/v2" + path, json=body)


def _body(source: str, **extra: object) -> dict[str, object]:
    return {"language": "python", "version": "*", "files": [{"content": source}], **extra}


async def test_double_a_signal_death_is_re_with_128_plus_n(server):
    response = await _post(server.url, "/execute", _body(SEGFAULT))
    stage = response.json()["run"]
    assert (stage["status"], stage["code"], stage["signal"]) == ("RE", 139, None)
    assert stage["message"] == "Exited with error status 139"
    assert "Segmentation fault" in stage["stderr"]


async def test_double_output_cap_is_1_kib_per_stream(server):
    whole = (await _post(server.url, "/execute", _body("print('x' * 5000)"))).json()["run"]
    assert whole["status"] == "OL" and whole["stdout"] == ""
    assert whole["message"] == "stdout length exceeded"
    assert "Sandbox keeper received fatal signal 6" in whole["stderr"]
    assert "Sandbox keeper received fatal signal 6" in whole["output"]
    # 100 block-buffered lines reach Piston as one 5,000-byte chunk: the real server kept
    # nothing in every run, not the first 1,000 bytes of whole lines.
    lines = (await _post(server.url, "/execute",
                         _body("for i in range(100): print('y' * 49)"))).json()["run"]
    assert lines["status"] == "OL" and lines["stdout"] == ""
    err = (await _post(server.url, "/execute",
                       _body("import sys; sys.stderr.write('e' * 3000)"))).json()["run"]
    assert err["status"] == "EL" and err["message"] == "stderr length exceeded"
    assert err["stderr"] == "Sandbox keeper received fatal signal 6\n"


async def test_double_keeps_whole_chunks_before_the_one_that_overflows(fresh):
    """Piston keeps the pipe reads that fit and loses the one that crosses the cap and all
    after it; with 50-byte reads (a program flushing 50-byte lines, read one by one) that is
    the first 20 lines, never a part of one."""
    fresh.double.output_chunk = 50
    source = "for i in range(100): print(str(i).zfill(49), flush=True)"
    stage = (await _post(fresh.url, "/execute", _body(source))).json()["run"]
    assert stage["status"] == "OL"
    assert stage["stdout"] == "".join(str(i).zfill(49) + "\n" for i in range(20))


async def test_double_malformed_json_and_null_file_answers(server):
    async with httpx.AsyncClient() as http:
        response = await http.post(server.url + "/api/v2/execute", content=b"{nope",
                                   headers={"content-type": "application/json"})
    assert response.status_code == 400 and list(response.json()) == ["stack"]
    assert response.json()["stack"].startswith("SyntaxError")
    response = await _post(server.url, "/execute",
                           {"language": "python", "version": "*", "files": [None]})
    assert response.status_code == 400 and response.json() == {}


@pytest.mark.parametrize("spec", ["^3", "3.x", ">=3", "3", "<4 >=3.0.0", "2 || 3"])
async def test_double_execute_takes_semver_ranges(server, spec):
    response = await _post(server.url, "/execute", _body("print(1)", version=spec))
    assert response.status_code == 200, response.text
    assert response.json()["run"]["stdout"] == "1\n"
    assert response.json()["version"].startswith("3.")


async def test_double_install_takes_a_range_and_uninstall_answers_like_piston(fresh):
    response = await _post(fresh.url, "/packages", {"language": "ruby", "version": "3.0"})
    assert response.json() == {"language": "ruby", "version": "3.0.1"}
    async with httpx.AsyncClient() as http:
        gone = await http.request("DELETE", fresh.url + "/api/v2/packages",
                                  json={"language": "ruby", "version": "3.0.1"})
        again = await http.request("DELETE", fresh.url + "/api/v2/packages",
                                   json={"language": "ruby", "version": "3.0.1"})
    assert gone.status_code == 200
    assert again.status_code == 500
    assert again.json() == {"message": "ruby-3.0.1 is not installed"}


ENOENT = "ENOENT: no such file or directory, stat '/piston/packages/gcc/12.2.0'"


@pytest.mark.parametrize(("deletes", "after_reinstall"), [
    # as the real server answered on 2026-12-07 (docs/sandbox.md): one, two and five DELETEs
    # in the re-check, three in the conformance run; issue 17's own run was two
    (1, ["c", "c++", "c++", "d", "d", "fortran", "fortran"]),
    (2, ["c", "c++", "d", "d", "fortran", "fortran"]),
    (3, ["c", "c++", "d", "fortran", "fortran"]),
    (5, ["c", "c++", "d", "fortran"]),
])
async def test_double_gcc_provides_four_languages_and_uninstalls_one_per_delete(
        fresh, deletes, after_reinstall):
    fresh.double.packages.append(
        {"language": "gcc", "language_version": "12.2.0", "installed": False})
    fresh.double.only_runtimes = set()

    async def listed() -> list[str]:
        async with httpx.AsyncClient() as http:
            return sorted(rt["language"] for rt in
                          (await http.get(fresh.url + "/api/v2/runtimes")).json())

    assert (await _post(fresh.url, "/packages", {"language": "gcc", "version": "*"})
            ).status_code == 200
    assert await listed() == ["c", "c++", "d", "fortran"]
    still = ["c", "c++", "d", "fortran"]
    answers = [(200, {"language": "gcc", "version": "12.2.0"}), (500, {"message": ENOENT}),
               (500, {"message": ENOENT}), (500, {"message": ENOENT}),
               (500, {"message": "gcc-12.2.0 is not installed"})]
    async with httpx.AsyncClient() as http:
        for n in range(deletes):
            response = await http.request("DELETE", fresh.url + "/api/v2/packages",
                                          json={"language": "gcc", "version": "12.2.0"})
            assert (response.status_code, response.json()) == answers[n]
            still = still[1:]
            assert await listed() == still
    assert (await _post(fresh.url, "/packages", {"language": "gcc", "version": "12.2.0"})
            ).status_code == 200
    assert await listed() == after_reinstall


async def test_double_checks_limits_against_the_configured_ones(fresh):
    fresh.double.configured["memory_limit"]["run"] = 256 * 1024 * 1024
    response = await _post(fresh.url, "/execute", _body("1", run_memory_limit=-1))
    assert response.json() == {"message": "run_memory_limit must be non-negative"}
    fresh.double.configured["timeout"]["run"] = 2000
    response = await _post(fresh.url, "/execute", _body("1", run_timeout=3000))
    assert response.json() == {
        "message": "run_timeout cannot exceed the configured limit of 2000"}
    assert (await _post(fresh.url, "/execute", _body("print(2)"))).json()["run"]["stdout"] \
        == "2\n"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_double_dies_when_its_package_index_is_unreachable(fresh, method):
    fresh.double.index_reachable = False
    body = None if method == "GET" else {"language": "python", "version": "3.12.0"}
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
            await http.request(method, fresh.url + "/api/v2/packages", json=body)
    with pytest.raises(BackendUnavailableError, match="cannot reach Piston"):
        await PistonBackend(fresh.url).runtimes()  # and it stays down


async def test_double_sandbox_failure_carries_isolates_text(fresh):
    text = "Cannot write /sys/fs/cgroup/box-1/memory.max: No such file or directory"
    fresh.double.sandbox_failure = text
    stage = (await _post(fresh.url, "/execute", _body("1"))).json()["run"]
    assert stage["status"] == "XX" and stage["message"] == text


async def test_client_sends_only_the_limits_asked_for(fresh):
    """A server with its own limits (PISTON_RUN_MEMORY_LIMIT, PISTON_RUN_TIMEOUT=2000) runs a
    request that sets none; the request carries no limit at all."""
    fresh.double.configured["memory_limit"]["run"] = 256 * 1024 * 1024
    fresh.double.configured["timeout"]["run"] = 2000
    backend = PistonBackend(fresh.url)
    result = await backend.run(RunRequest.single("python", "print(5)"))
    assert result.run.stdout == "5\n"
    body = fresh.double.requests[-1][2]
    assert not {k for k in body if "limit" in k or "timeout" in k or "cpu_time" in k}
    await backend.run(RunRequest.single("python", "1", run_timeout=1500))
    assert fresh.double.requests[-1][2]["run_timeout"] == 1500
    with pytest.raises(PistonError, match="cannot exceed the configured limit of 2000"):
        await backend.run(RunRequest.single("python", "1", run_timeout=3000))


@pytest.mark.parametrize("spec", ["^3", "3.x", ">=3"])
async def test_client_sends_semver_ranges(server, spec):
    result = await PistonBackend(server.url).run(
        RunRequest.single("python", "print(7)", version=spec))
    assert result.run.stdout == "7\n" and result.version.startswith("3.")


async def test_client_package_list_on_an_offline_piston_is_one_clear_line(fresh):
    fresh.double.index_reachable = False
    async with PistonClient(fresh.url) as client:
        with pytest.raises(BackendUnavailableError,
                           match=r"^Piston's package index is unreachable from the Piston "
                                 r"server"):
            await client.packages()


@pytest.mark.parametrize(("language", "source"), [
    ("python", SEGFAULT),
    ("python", "import os\nos.abort()"),
    pytest.param("c", "int main(void) { return *(volatile int *)0; }",
                 marks=pytest.mark.skipif(tool("gcc") is None, reason="gcc is not installed")),
])
async def test_a_signal_death_reads_the_same_on_both_backends(server, language, source):
    """Piston hides a signal death as RE + 128+N; the client maps it back, so the app and
    the candidate see what the local backend says, and the message names Piston."""
    request = RunRequest.single(language, source)
    local = (await LocalBackend(isolation="bwrap").run(request)).run
    piston = (await PistonBackend(server.url).run(request)).run
    assert local.status == "SG" and local.signal is not None
    assert (piston.status, piston.signal, piston.code) == ("SG", local.signal, None)
    assert piston.message is not None and "Piston reported exit status" in piston.message


def test_an_exit_status_over_128_without_bashs_line_stays_an_exit_status():
    """A program that exits 139 itself has no "Segmentation fault" line from bash."""
    exited = StageResult(status="RE", code=139, stderr="bye\n",
                         message="Exited with error status 139")
    assert from_piston(exited) == exited
    killed = StageResult(status="RE", code=139,
                         stderr="/piston/packages/run: line 1:  2 Segmentation fault  x\n")
    assert (from_piston(killed).status, from_piston(killed).signal) == ("SG", "SIGSEGV")


async def test_output_over_the_cap_is_explained(server):
    result = await PistonBackend(server.url).run(RunRequest.single("python", "print('x' * 5000)"))
    assert result.run.status == "OL"
    assert result.run.message == ("stdout length exceeded: output over Piston's limit of 1 KiB "
                                  "per stream; the server's PISTON_OUTPUT_MAX_SIZE raises it")
    assert "Sandbox keeper" not in result.run.stderr + result.run.output


async def test_a_sandbox_failure_keeps_isolates_text(fresh):
    fresh.double.sandbox_failure = "Cannot write /sys/fs/cgroup/box-1/memory.max: Read-only"
    result = await PistonBackend(fresh.url).run(RunRequest.single("python", "1"))
    assert result.run.status == "XX"
    assert result.run.message == ("Piston's sandbox (isolate) failed: Cannot write "
                                  "/sys/fs/cgroup/box-1/memory.max: Read-only")


async def test_uninstall_answers_are_clear(fresh):
    fresh.double.packages.append(
        {"language": "gcc", "language_version": "12.2.0", "installed": False})
    async with PistonClient(fresh.url) as client:
        with pytest.raises(PistonError) as info:
            await client.uninstall("python", "3.12.0")
        assert info.value.message == "python-3.12.0 is not installed"
        await client.install("gcc", "12")
        assert await client.uninstall("gcc", "12.2.0") == {"language": "gcc",
                                                           "version": "12.2.0"}
        with pytest.raises(PistonError) as info:
            await client.uninstall("gcc", "12.2.0")
    assert info.value.message.startswith("gcc-12.2.0 is already removed from Piston's disk")
    assert "restart Piston" in info.value.message and "ENOENT" in info.value.message


async def test_expresss_own_400s_become_readable_messages(server):
    async with PistonClient(server.url) as client:
        with pytest.raises(PistonError) as info:
            await client._call("POST", "/execute",
                               {"language": "python", "version": "*", "files": [None]})
    assert info.value.message == "Piston refused the request without a reason (Bad Request)"

    def stack(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"stack": "SyntaxError: Unexpected token n\n    at x"})

    client = PistonClient("http://127.0.0.1:2000", transport=httpx.MockTransport(stack))
    async with client:
        with pytest.raises(PistonError) as info:
            await client.runtimes()
    assert info.value.message == "SyntaxError: Unexpected token n"


async def test_double_output_overflow_is_killed_with_sigkill(server):
    stage = (await _post(server.url, "/execute", _body("print('x' * 5000)"))).json()["run"]
    assert (stage["status"], stage["signal"]) == ("OL", "SIGKILL")
