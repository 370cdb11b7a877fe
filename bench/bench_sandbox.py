"""Sandbox: hello-world round trip per language (local backend vs the bare toolchain, same run)
and runs per second with concurrent requests on this machine's cores."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import Row, median
from sandbox import LocalBackend, RunRequest, SourceFile
from sandbox.isolation import GNU_TIME
from sandbox.languages import SYSTEM_PATH, installed

AREA = "sandbox"
HELLO = {
    "python": ("hello.py", "print('hello')\n"),
    "javascript": ("hello.js", "console.log('hello')\n"),
    "c": ("hello.c", '#include <stdio.h>\nint main(void){ puts("hello"); return 0; }\n'),
    "c++": ("hello.cpp", "#include <iostream>\nint main(){ std::cout << \"hello\\n\"; }\n"),
    "java": ("Main.java", "public class Main { public static void main(String[] a) "
                          "{ System.out.println(\"hello\"); } }\n"),
}


def _bare_argv(language: str, path: Path) -> list[list[str]]:
    out = str(path.parent / "a.out")
    return {
        "python": [["python3", str(path)]],
        "javascript": [["node", str(path)]],
        "c": [["gcc", "-O2", "-o", out, str(path), "-lm"], [out]],
        "c++": [["g++", "-O2", "-o", out, str(path)], [out]],
        "java": [["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", str(path)]],
    }[language]


def _bare_once(argvs: list[list[str]]) -> float:
    start = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, check=True, capture_output=True,
                       env={"PATH": SYSTEM_PATH})
    return (time.perf_counter() - start) * 1000


async def _sandbox_once(backend: LocalBackend, request: RunRequest) -> float:
    start = time.perf_counter()
    result = await backend.run(request)
    elapsed = (time.perf_counter() - start) * 1000
    if not result.run.ok or result.run.stdout != "hello\n":
        raise RuntimeError(f"hello world failed: {result.to_dict()}")
    return elapsed


async def _round_trips(quick: bool) -> list[Row]:
    rows = []
    backend = LocalBackend(isolation="bwrap")
    with tempfile.TemporaryDirectory() as tmp:
        for lang, rt in installed():
            name, source = HELLO[lang.name]
            path = Path(tmp) / name
            path.write_text(source)
            request = RunRequest(language=lang.name, files=(SourceFile(source, name),),
                                 run_timeout=20_000, compile_timeout=20_000)
            n = (3 if quick else 8) if lang.name in ("java", "c++") else (5 if quick else 30)
            await _sandbox_once(backend, request)  # warm caches, both sides
            _bare_once(_bare_argv(lang.name, path))
            sandboxed, bare = [], []
            for _ in range(n):  # interleaved, so both see the same machine state
                sandboxed.append(await _sandbox_once(backend, request))
                bare.append(_bare_once(_bare_argv(lang.name, path)))
            goal = "≤ 60 ms and ≤ 3x bare" if lang.name == "python" else ""
            what = "compile + run" if lang.compiled else "run"
            rows.append(Row(AREA, f"hello world {lang.name} {rt.version} ({what}), n={n}",
                            median(sandboxed), "ms", median(bare), "bare toolchain", goal,
                            "local backend: setpriv+prlimit+GNU time+bwrap, median"))
    return rows


async def _throughput(quick: bool) -> list[Row]:
    cores = os.cpu_count() or 1
    total = 16 if quick else 60
    backend = LocalBackend(isolation="bwrap", max_concurrency=cores)
    request = RunRequest.single("python", HELLO["python"][1])
    await backend.run(request)

    start = time.perf_counter()
    results = await asyncio.gather(*(backend.run(request) for _ in range(total)))
    sandbox_rate = total / (time.perf_counter() - start)
    assert all(r.run.ok for r in results)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hello.py"
        path.write_text(HELLO["python"][1])
        sem = asyncio.Semaphore(cores)
        python3 = shutil.which("python3", path=SYSTEM_PATH) or "python3"

        async def bare() -> None:
            async with sem:
                proc = await asyncio.create_subprocess_exec(
                    python3, str(path), stdout=subprocess.DEVNULL, env={"PATH": SYSTEM_PATH})
                await proc.wait()

        start = time.perf_counter()
        await asyncio.gather(*(bare() for _ in range(total)))
        bare_rate = total / (time.perf_counter() - start)
    return [Row(AREA, f"python hello runs/s, {total} requests, {cores} at a time",
                sandbox_rate, "runs/s", bare_rate, "bare python3", "",
                f"{cores} cores")]


async def _memory_report(quick: bool) -> list[Row]:
    """What GNU time's memory report costs, and the figure next to GNU time on the bare
    interpreter."""
    with_time = LocalBackend(isolation="bwrap")
    without = LocalBackend(isolation="bwrap", time_tool=None)
    request = RunRequest.single("python", HELLO["python"][1])
    await with_time.run(request)
    await without.run(request)
    n = 5 if quick else 30
    timed: list[float] = []
    plain: list[float] = []
    peaks: list[float] = []
    for _ in range(n):  # interleaved
        timed.append(await _sandbox_once(with_time, request))
        plain.append(await _sandbox_once(without, request))
        peaks.append((await with_time.run(request)).run.memory or 0)
    bare_peaks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hello.py"
        path.write_text(HELLO["python"][1])
        for _ in range(5 if quick else 10):
            out = subprocess.run([GNU_TIME, "-f", "%M", "python3", str(path)], check=True,
                                 capture_output=True, text=True, env={"PATH": SYSTEM_PATH})
            bare_peaks.append(int(out.stderr.strip().splitlines()[-1]) * 1024)
    return [
        Row(AREA, f"python hello world with the memory report (GNU time), n={n}",
            median(timed), "ms", median(plain), "same backend, time_tool=None", "",
            "interleaved, median"),
        Row(AREA, "python hello world: reported memory", median(peaks) / 2**20, "MiB",
            median(bare_peaks) / 2**20, "GNU time on bare python3", "",
            "peak RSS, median"),
    ]


def run(quick: bool) -> list[Row]:
    async def main() -> list[Row]:
        return (await _round_trips(quick) + await _memory_report(quick)
                + await _throughput(quick))

    return asyncio.run(main())
