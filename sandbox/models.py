"""The request and result shapes, mirroring Piston's v2 `execute` API for every backend.

Times are milliseconds, memory is bytes, exactly as Piston reports them. Every object checks
itself in `__post_init__` and raises `InvalidRequestError` (a `ValueError`) with a one-line
reason; `from_dict` accepts Piston's JSON and `to_dict` produces it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import InvalidRequestError

STATUSES = frozenset({"TO", "OL", "EL", "SG", "RE", "XX"})
ENCODINGS = frozenset({"utf8", "base64", "hex"})

MAX_FILES = 32
MAX_SOURCE_BYTES = 512 * 1024  # all files together
MAX_STDIN_BYTES = 1024 * 1024
MAX_ARGS = 64
MAX_TIMEOUT_MS = 60_000
DEFAULT_RUN_TIMEOUT_MS = 3_000
DEFAULT_COMPILE_TIMEOUT_MS = 10_000
LIMITS = ("compile_timeout", "run_timeout", "compile_cpu_time", "run_cpu_time",
          "compile_memory_limit", "run_memory_limit")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise InvalidRequestError(message)


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidRequestError(f"{key} has the wrong type")
    return value


@dataclass(frozen=True)
class SourceFile:
    """One file of a submission. Piston names an unnamed file `file<i>.code`."""

    content: str
    name: str | None = None
    encoding: str = "utf8"

    def __post_init__(self) -> None:
        _require(isinstance(self.content, str), "file content is required as a string")
        _require(self.encoding in ENCODINGS, f"unknown file encoding {self.encoding!r}")
        _require(self.name is None or isinstance(self.name, str), "file name must be a string")

    def data(self) -> bytes:
        """The file's bytes, decoded from its encoding."""
        try:
            if self.encoding == "base64":
                return base64.b64decode(self.content, validate=True)
            if self.encoding == "hex":
                return bytes.fromhex(self.content)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(f"file {self.name!r} is not valid {self.encoding}") from exc
        return self.content.encode()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.encoding != "utf8":
            out["encoding"] = self.encoding
        return out

    @classmethod
    def from_dict(cls, data: Any) -> SourceFile:
        _require(isinstance(data, dict), "each file must be an object")
        return cls(
            content=_get(data, "content", str, None) or "",
            name=_get(data, "name", str, None),
            encoding=_get(data, "encoding", str, "utf8"),
        )


def check_file_name(name: str) -> None:
    """Refuse names that are absolute, climb out, hide in dot-dirs or carry odd characters."""
    _require(0 < len(name) <= 255, f"file name {name!r} must be 1..255 characters")
    _require(not name.startswith("/"), f"file name {name!r} must be relative")
    parts = name.split("/")
    for part in parts:
        _require(part not in ("", ".", ".."), f"file name {name!r} must not contain '.', '..' "
                 "or empty parts")
        _require(all(c.isalnum() or c in "._-+" for c in part),
                 f"file name {name!r} may hold only letters, digits and . _ - +")
    _require(len(parts) <= 4, f"file name {name!r} is nested too deep")


@dataclass(frozen=True)
class RunRequest:
    """Piston v2 `execute` request. `version` is a semver range; "*" means any installed
    version.

    A limit left None is not sent: Piston then applies its own configured limit (a server
    started with `PISTON_RUN_MEMORY_LIMIT` refuses `-1`, one with `PISTON_RUN_TIMEOUT=2000`
    refuses 3000). The local backend reads None as its defaults (`DEFAULT_*` here, -1 for
    memory: the language's default).
    """

    language: str
    files: tuple[SourceFile, ...]
    version: str = "*"
    stdin: str = ""
    args: tuple[str, ...] = ()
    compile_timeout: int | None = None
    run_timeout: int | None = None
    compile_cpu_time: int | None = None
    run_cpu_time: int | None = None
    compile_memory_limit: int | None = None
    run_memory_limit: int | None = None

    def __post_init__(self) -> None:
        _require(isinstance(self.language, str) and bool(self.language.strip()),
                 "language is required as a string")
        _require(isinstance(self.version, str) and bool(self.version),
                 "version is required as a string")
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "args", tuple(self.args))
        _require(0 < len(self.files) <= MAX_FILES, f"files must hold 1..{MAX_FILES} files")
        _require(all(isinstance(f, SourceFile) for f in self.files), "files must be SourceFiles")
        total = sum(len(f.data()) for f in self.files)
        _require(total <= MAX_SOURCE_BYTES,
                 f"the source is {total} bytes; the limit is {MAX_SOURCE_BYTES}")
        names = self.file_names()
        for name in names:
            check_file_name(name)
        _require(len(set(names)) == len(names), "file names must be unique")
        _require(isinstance(self.stdin, str), "stdin must be a string")
        _require(len(self.stdin.encode()) <= MAX_STDIN_BYTES,
                 f"stdin is larger than {MAX_STDIN_BYTES} bytes")
        _require(len(self.args) <= MAX_ARGS and all(isinstance(a, str) and "\0" not in a
                                                    for a in self.args),
                 f"args must be at most {MAX_ARGS} strings without NUL")
        for key in LIMITS[:4]:
            value = getattr(self, key)
            _require(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                       and 0 < value <= MAX_TIMEOUT_MS),
                     f"{key} must be 1..{MAX_TIMEOUT_MS} ms")
        for key in LIMITS[4:]:
            value = getattr(self, key)
            _require(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                       and (value == -1 or value > 0)),
                     f"{key} must be -1 (no limit of its own) or a positive number of bytes")

    @property
    def limits(self) -> tuple[int, int, int | None, int | None, int, int]:
        """The limits with the local backend's defaults filled in: compile and run timeout,
        cpu time, memory (-1: the language's default)."""
        return (self.compile_timeout or DEFAULT_COMPILE_TIMEOUT_MS,
                self.run_timeout or DEFAULT_RUN_TIMEOUT_MS,
                self.compile_cpu_time, self.run_cpu_time,
                -1 if self.compile_memory_limit is None else self.compile_memory_limit,
                -1 if self.run_memory_limit is None else self.run_memory_limit)

    def file_names(self) -> list[str]:
        """The names files get in the workdir (Piston's `file<i>.code` when unnamed)."""
        return [f.name or f"file{i}.code" for i, f in enumerate(self.files)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "language": self.language,
            "version": self.version,
            "files": [f.to_dict() for f in self.files],
            "stdin": self.stdin,
            "args": list(self.args),
        }
        for key in LIMITS:  # only the limits asked for: Piston applies its own to the rest
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunRequest:
        _require(isinstance(data, dict), "the request must be a JSON object")
        files = data.get("files")
        _require(isinstance(files, list), "files is required as an array")
        args = _get(data, "args", list, [])
        return cls(
            language=_get(data, "language", str, ""),
            version=_get(data, "version", str, "*"),
            files=tuple(SourceFile.from_dict(f) for f in files),
            stdin=_get(data, "stdin", str, ""),
            args=tuple(args),
            **{key: _get(data, key, int, None) for key in LIMITS},
        )

    @classmethod
    def single(cls, language: str, source: str, *, stdin: str = "", version: str = "*",
               **limits: Any) -> RunRequest:
        """A request with one unnamed file: the common case."""
        return cls(language=language, version=version, files=(SourceFile(source),),
                   stdin=stdin, **limits)


@dataclass(frozen=True)
class StageResult:
    """One stage (`compile` or `run`) as Piston reports it."""

    stdout: str = ""
    stderr: str = ""
    output: str = ""
    code: int | None = None
    signal: str | None = None
    status: str | None = None
    message: str | None = None
    wall_time: float | None = None
    cpu_time: float | None = None
    memory: int | None = None

    def __post_init__(self) -> None:
        _require(self.status is None or self.status in STATUSES,
                 f"status must be one of {sorted(STATUSES)} or null, not {self.status!r}")
        _require(self.code is None or isinstance(self.code, int), "code must be an integer")

    @property
    def ok(self) -> bool:
        """The program ran and exited with code 0."""
        return self.status is None and self.code == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stdout": self.stdout, "stderr": self.stderr, "output": self.output,
            "code": self.code, "signal": self.signal, "status": self.status,
            "message": self.message, "wall_time": self.wall_time,
            "cpu_time": self.cpu_time, "memory": self.memory,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StageResult:
        _require(isinstance(data, dict), "a stage must be an object")
        num = (int, float)
        return cls(
            stdout=_get(data, "stdout", str, ""), stderr=_get(data, "stderr", str, ""),
            output=_get(data, "output", str, ""), code=_get(data, "code", int, None),
            signal=_get(data, "signal", str, None), status=_get(data, "status", str, None),
            message=_get(data, "message", str, None),
            wall_time=_get(data, "wall_time", num, None),
            cpu_time=_get(data, "cpu_time", num, None), memory=_get(data, "memory", int, None),
        )


@dataclass(frozen=True)
class RunResult:
    """Piston v2 `execute` response: `compile` only for compiled languages.

    As in Piston, when compilation fails there is no run stage and `run` repeats `compile`.
    """

    language: str
    version: str
    run: StageResult
    compile: StageResult | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"language": self.language, "version": self.version,
                               "run": self.run.to_dict()}
        if self.compile is not None:
            out["compile"] = self.compile.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunResult:
        _require(isinstance(data, dict), "the result must be a JSON object")
        _require(isinstance(data.get("run"), dict), "the result has no run stage")
        compile_stage = data.get("compile")
        return cls(
            language=_get(data, "language", str, ""),
            version=_get(data, "version", str, ""),
            run=StageResult.from_dict(data["run"]),
            compile=StageResult.from_dict(compile_stage) if compile_stage is not None else None,
        )


@dataclass(frozen=True)
class Runtime:
    """One entry of a runtimes listing (Piston's GET /api/v2/runtimes)."""

    language: str
    version: str
    aliases: tuple[str, ...] = field(default=())
    runtime: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"language": self.language, "version": self.version,
                               "aliases": list(self.aliases)}
        if self.runtime is not None:
            out["runtime"] = self.runtime
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Runtime:
        _require(isinstance(data, dict), "a runtime must be an object")
        return cls(language=_get(data, "language", str, ""),
                   version=_get(data, "version", str, ""),
                   aliases=tuple(_get(data, "aliases", list, [])),
                   runtime=_get(data, "runtime", str, None))

    def matches(self, language: str, version: str) -> bool:
        """Piston's matching: name or alias, and `version` a semver range the runtime's version
        satisfies (`*`, `3.11.2`, `3.11` = `3.11.x`, `^3.11`, `~3.11`, `>=3 <4`, `a || b`)."""
        if language != self.language and language not in self.aliases:
            return False
        return satisfies(self.version, version)


_PARTIAL = re.compile(r"(?:v|=)?\s*(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?"
                      r"(?:[-+][0-9A-Za-z.+-]*)?")
_COMPARATOR = re.compile(r"(<=|>=|<|>|=|\^|~>?|)(\S+)")
Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    """`major.minor.patch` of a full version (a pre-release or build tail is ignored), else
    None."""
    match = _PARTIAL.fullmatch(text.strip())
    if not match or any(g is None or not g.isdigit() for g in match.groups()):
        return None
    return (int(match[1]), int(match[2]), int(match[3]))


def _partial(text: str) -> list[int] | None:
    """The numbers given before the first wildcard ("3.11.x" -> [3, 11]); None if malformed."""
    match = _PARTIAL.fullmatch(text)
    if not match:
        return None
    parts: list[int] = []
    for group in match.groups():
        if group is None or not group.isdigit():
            break
        parts.append(int(group))
    return parts


def _bump(parts: list[int], at: int) -> Version:
    """The smallest version above every version starting with parts[:at + 1]."""
    head = [*parts[:at], parts[at] + 1]
    return tuple(head + [0] * (3 - len(head)))  # type: ignore[return-value]


def _floor(parts: list[int]) -> Version:
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def _comparator(op: str, parts: list[int], version: Version) -> bool:
    """One node-semver comparator (with X-range, caret and tilde desugaring)."""
    n = len(parts)
    if op in ("", "="):
        return n == 0 or _floor(parts) <= version < _bump(parts, n - 1)
    if op == "^":
        if n == 0:
            return True
        first = next((i for i, p in enumerate(parts) if p != 0), n - 1)
        return _floor(parts) <= version < _bump(parts, first)
    if op in ("~", "~>"):
        return n == 0 or _floor(parts) <= version < _bump(parts, min(n - 1, 1))
    if op == ">=":
        return version >= _floor(parts)
    if op == ">":
        return n != 0 and version >= _bump(parts, n - 1)
    if op == "<":
        return n != 0 and version < _floor(parts)
    if op == "<=":
        return n == 0 or version < _bump(parts, n - 1)
    return False


def satisfies(version: str, spec: str) -> bool:
    """Whether `version` is in the semver range `spec`, as node-semver's `satisfies` (what
    Piston uses to pick runtimes and packages) answers for ranges made of `*`, x-ranges,
    partial versions (`3.11` means `3.11.x`), `^`, `~`, `<`, `<=`, `>`, `>=`, `=`, hyphen
    ranges, spaces (and) and `||` (or). Pre-release tags are ignored; a malformed range
    matches nothing. A version that is not `N.N.N` matches only itself or `*`."""
    if not isinstance(spec, str) or not isinstance(version, str):
        return False
    parsed = parse_version(version)
    if parsed is None:
        return spec.strip() in ("*", "", version)
    for alternative in spec.split("||"):
        hyphen = re.fullmatch(r"\s*(\S+)\s+-\s+(\S+)\s*", alternative)
        if hyphen:
            low, high = _partial(hyphen[1]), _partial(hyphen[2])
            if low is None or high is None:
                return False
            if _comparator(">=", low, parsed) and _comparator("<=", high, parsed):
                return True
            continue
        tokens = re.sub(r"(<=|>=|<|>|=|\^|~>?)\s+", r"\1", alternative).split() or ["*"]
        ok = True
        for token in tokens:
            match = _COMPARATOR.fullmatch(token)
            parts = _partial(match[2]) if match else None
            if match is None or parts is None:
                return False
            ok = ok and _comparator(match[1], parts, parsed)
        if ok:
            return True
    return False
