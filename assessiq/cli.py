"""The `assessiq` command line. Subcommands live in `assessiq.commands`, one module each."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__, commands, extras

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assessiq",
        description="Peer-to-peer technical interviews with a record anyone can verify.",
    )
    parser.add_argument("--version", action="version", version=f"assessiq {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
        except ModuleNotFoundError:  # an extra this install lacks: `main` says which
            stub = sub.add_parser(info.name, help=f"({extras.missing(info.name)})",
                                  add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    absent = extras.missing(args.command)
    if absent is not None:
        print(f"assessiq: {absent}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .core.errors import AssessIQError  # after the check: the core needs the `verify` extra

    try:
        code: int = args.func(args)
    except AssessIQError as exc:
        print(f"assessiq: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`assessiq verify F | head`): not an error
        # Python flushes stdout again at exit; point it at /dev/null so that is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
