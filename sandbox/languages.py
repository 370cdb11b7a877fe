"""The languages the local backend knows: how to find, version, compile and run each one.

Every command is relative to the workdir, so the same argv runs inside bubblewrap (`/box`) and in
the weaker fallback (a host directory). A compiled language writes its binary `a.out` and also
copies it to fd 3: the local backend hands that copy to the run stage, so the host never has to
read anything the sandbox wrote.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.models import Runtime

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
MB = 1024 * 1024


def _python_run(files: list[str], args: list[str], mem: int) -> list[str]:
    return ["python3", "-B", files[0], *args]


def _node_run(files: list[str], args: list[str], mem: int) -> list[str]:
    heap = max(16, mem // MB // 2)
    return ["node", f"--max-old-space-size={heap}", files[0], *args]


def _java_run(files: list[str], args: list[str], mem: int) -> list[str]:
    heap = max(32, mem // MB // 2)
    # The single-file source launcher, as Piston does: no separate compile stage.
    return ["java", f"-Xmx{heap}m", "-Xss8m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-XX:ReservedCodeCacheSize=64m", "-XX:CompressedClassSpaceSize=64m",
            "-XX:MaxMetaspaceSize=128m", "-XX:-UsePerfData", "--source", _java_major(),
            files[0], *args]


def _binary_run(files: list[str], args: list[str], mem: int) -> list[str]:
    return ["./a.out", *args]


def _gcc_compile(driver: str, lang: str, std: str) -> Callable[[list[str]], list[str]]:
    def build(files: list[str]) -> list[str]:
        script = f'{driver} -O2 -std={std} -o a.out -x {lang} "$@" -lm && cat a.out >&3'
        return ["sh", "-c", script, "sh", *files]
    return build


@dataclass(frozen=True)
class Language:
    """How the local backend runs one language."""

    name: str
    aliases: tuple[str, ...]
    runtime: str | None
    binary: str
    version_argv: tuple[str, ...]
    version_pattern: str
    run: Callable[[list[str], list[str], int], list[str]]
    compile: Callable[[list[str]], list[str]] | None = None
    # Address space the runtime needs on top of the program's memory limit (VM reservations).
    address_space_extra: int = 256 * MB
    default_memory: int = 256 * MB
    min_cpu_seconds: int = 1

    @property
    def compiled(self) -> bool:
        return self.compile is not None


LANGUAGES: tuple[Language, ...] = (
    Language("python", ("py", "py3", "python3"), None, "python3", ("python3", "--version"),
             r"Python (\d+\.\d+\.\d+)", _python_run),
    Language("javascript", ("node-javascript", "node-js", "js", "node"), "node", "node",
             ("node", "--version"), r"v(\d+\.\d+\.\d+)", _node_run,
             address_space_extra=1024 * MB),
    Language("c", ("gcc",), "gcc", "gcc", ("gcc", "-dumpfullversion"), r"(\d+\.\d+\.\d+)",
             _binary_run, _gcc_compile("gcc", "c", "gnu17"), address_space_extra=64 * MB),
    Language("c++", ("cpp", "g++"), "gcc", "g++", ("g++", "-dumpfullversion"),
             r"(\d+\.\d+\.\d+)", _binary_run, _gcc_compile("g++", "c++", "gnu++17"),
             address_space_extra=64 * MB),
    Language("java", (), None, "java", ("java", "-version"), r'version "(\d+(?:\.\d+)*)',
             _java_run, address_space_extra=1536 * MB, min_cpu_seconds=2),
)


def canonical_name(name: str) -> str:
    """The sandbox's name for a language name or alias ("cpp" → "c++", "js" → "javascript",
    "Py" → "python"); a name it does not know is returned stripped and lower-cased."""
    low = name.strip().lower()
    for lang in LANGUAGES:
        if low == lang.name or low in lang.aliases:
            return lang.name
    return low


def _probe_version(lang: Language) -> str | None:
    if shutil.which(lang.binary, path=SYSTEM_PATH) is None:
        return None
    if lang.compiled and shutil.which("sh", path=SYSTEM_PATH) is None:
        return None
    try:
        proc = subprocess.run(list(lang.version_argv), capture_output=True, text=True,
                              timeout=20, env={"PATH": SYSTEM_PATH}, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(lang.version_pattern, proc.stdout + proc.stderr)
    if not match:
        return None
    version = match.group(1)
    return version if version.count(".") >= 2 else version + ".0" * (2 - version.count("."))


@functools.cache
def installed() -> tuple[tuple[Language, Runtime], ...]:
    """The languages whose toolchain is on this machine, each with its runtime entry."""
    found = []
    for lang in LANGUAGES:
        version = _probe_version(lang)
        if version is not None:
            found.append((lang, Runtime(lang.name, version, lang.aliases, lang.runtime)))
    return tuple(found)


@functools.cache
def _java_major() -> str:
    for lang, rt in installed():
        if lang.name == "java":
            return rt.version.split(".")[0]
    return "17"
