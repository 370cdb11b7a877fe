"""`python -m sandbox run FILE --language L ...`, `python -m sandbox runtimes` and
`python -m sandbox piston up [--language L ...]`.

Exit 0 when the run happened (whatever the program's own status), 2 on a user mistake, 1 when
the backend cannot run; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from sandbox.backend import Backend
from sandbox.errors import InvalidRequestError, PistonError, SandboxError
from sandbox.models import (
    MAX_SOURCE_BYTES,
    RunRequest,
    RunResult,
    SourceFile,
    StageResult,
    check_file_name,
)
from sandbox.piston import DEFAULT_URL, PistonBackend, check_piston_url
from sandbox.piston_launched import LaunchedPistonBackend
from sandbox.piston_launcher import IMAGE, PistonLauncher


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run untrusted code in a local bubblewrap sandbox or on Piston.")
    sub = parser.add_subparsers(dest="command", required=True)

    def backend_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=["local", "piston"], default=None,
                       help="where to run: this machine (default) or a Piston server")
        p.add_argument("--piston-url", default=DEFAULT_URL,
                       help=f"Piston's base URL (default {DEFAULT_URL})")
        p.add_argument("--launch", action="store_true",
                       help="start or reuse a local Piston container with Docker first and "
                            "install the language if needed (implies --backend piston; "
                            "progress on stderr)")
        p.add_argument("--json", action="store_true", help="print JSON (Piston's shape)")

    run_p = sub.add_parser("run", help="run one source file and print the result",
                           description="Run FILE and print Piston's result shape.")
    run_p.add_argument("file", type=Path, metavar="FILE", help="the source file")
    run_p.add_argument("--language", "-l", required=True,
                       help="python, javascript, c, c++, java (or an alias)")
    run_p.add_argument("--version", default="*", help="runtime version (default: any)")
    run_p.add_argument("--stdin", default="", help="text given to the program on stdin")
    run_p.add_argument("--arg", action="append", default=[], dest="args",
                       help="a command line argument for the program (repeatable)")
    run_p.add_argument("--run-timeout", type=int, default=None,
                       help="wall ms (default: the backend's own; 3000 locally)")
    run_p.add_argument("--memory-limit", type=int, default=None,
                       help="bytes for the run stage (default: the backend's own)")
    backend_options(run_p)

    rt_p = sub.add_parser("runtimes", help="list the languages the backend can run",
                          description="List languages and versions the backend can run.")
    backend_options(rt_p)

    piston_p = sub.add_parser("piston", help="manage the local Piston container (Docker)",
                              description="Manage the local Piston container.")
    piston_sub = piston_p.add_subparsers(dest="piston_command", required=True)
    up_p = piston_sub.add_parser(
        "up", help="start or reuse the Piston container and install runtimes",
        description="Start (or reuse) the Piston container on 127.0.0.1 with Docker, pulling "
                    "the image the first time, wait until it answers, and install the runtimes "
                    "named with --language that it lacks. Progress goes to stdout.")
    up_p.add_argument("--language", "-l", action="append", default=[], dest="languages",
                      metavar="L[=VERSION]",
                      help="a runtime to install if missing, e.g. python or python=3.12 "
                           "(repeatable)")
    up_p.add_argument("--piston-url", default=DEFAULT_URL,
                      help=f"where Piston listens, on 127.0.0.1 (default {DEFAULT_URL})")
    up_p.add_argument("--image", default=IMAGE, help=f"the image (default {IMAGE})")
    up_p.add_argument("--health-timeout", type=float, default=60.0, metavar="SECONDS",
                      help="how long to wait for Piston to answer (default 60)")
    return parser


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stdout_progress(message: str) -> None:
    print(message, flush=True)


def _backend(args: argparse.Namespace) -> Backend:
    check_piston_url(args.piston_url)  # a bad URL is a user mistake, whichever backend
    if args.launch:
        if args.backend == "local":
            raise InvalidRequestError("--launch starts Piston; it cannot go with --backend local")
        return LaunchedPistonBackend(PistonLauncher.for_url(args.piston_url),
                                     progress=_stderr_progress)
    if args.backend == "piston":
        return PistonBackend(args.piston_url)
    from sandbox.local import LocalBackend

    return LocalBackend()


def _print_stage(name: str, stage: StageResult) -> None:
    status = stage.status or "OK"
    memory = f"{stage.memory / 1e6:.1f} MB" if stage.memory is not None else "-"
    print(f"[{name}] status={status} code={stage.code} signal={stage.signal} "
          f"wall={stage.wall_time} ms cpu={stage.cpu_time} ms memory={memory}")
    if stage.message:
        print(f"[{name}] {stage.message}")
    if stage.stdout:
        print(f"--- {name} stdout ---\n{stage.stdout}", end="" if stage.stdout.endswith("\n")
              else "\n")
    if stage.stderr:
        print(f"--- {name} stderr ---\n{stage.stderr}", end="" if stage.stderr.endswith("\n")
              else "\n")


def _print_result(result: RunResult) -> None:
    print(f"{result.language} {result.version}")
    if result.compile is not None:
        _print_stage("compile", result.compile)
        if result.run is result.compile or result.run == result.compile:
            return
    _print_stage("run", result.run)


async def _run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise InvalidRequestError(f"{path} is larger than {MAX_SOURCE_BYTES} bytes")
        content = path.read_text()
    except FileNotFoundError:
        raise InvalidRequestError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc}") from None
    try:
        check_file_name(path.name)
        name: str | None = path.name
    except InvalidRequestError:
        name = None  # an odd file name: Piston's default name instead
    request = RunRequest(language=args.language, version=args.version,
                         files=(SourceFile(content, name),), stdin=args.stdin,
                         args=tuple(args.args), run_timeout=args.run_timeout,
                         run_memory_limit=args.memory_limit)
    result = await _backend(args).run(request)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_result(result)
    return 0


async def _runtimes(args: argparse.Namespace) -> int:
    runtimes = await _backend(args).runtimes()
    if args.json:
        print(json.dumps([rt.to_dict() for rt in runtimes], indent=2))
    else:
        for rt in runtimes:
            aliases = ", ".join(rt.aliases)
            print(f"{rt.language:<12} {rt.version:<10} {aliases}")
    return 0


async def _piston_up(args: argparse.Namespace) -> int:
    wanted = []
    for item in args.languages:
        language, _, version = item.partition("=")
        if not language.strip():
            raise InvalidRequestError(f"--language {item!r}: give a language, e.g. python")
        wanted.append((language.strip(), version.strip() or "*"))
    if args.health_timeout <= 0:
        raise InvalidRequestError("--health-timeout must be positive")
    launcher = PistonLauncher.for_url(args.piston_url, image=args.image,
                                      health_timeout=args.health_timeout)
    await launcher.start(wanted, progress=_stdout_progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"run": _run, "runtimes": _runtimes, "piston": _piston_up}[args.command]
    try:
        return asyncio.run(handler(args))
    except InvalidRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PistonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if 400 <= exc.status_code < 500 else 1
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`... runtimes | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)  # Python flushes stdout again at exit
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
