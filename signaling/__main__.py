"""`assessiq-signaling` / `python -m signaling`: run the signaling server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import fields
from pathlib import Path

from signaling.config import TURN_SECRET_ENV, Limits, ServerConfig, load_config
from signaling.errors import SignalingError
from signaling.server import SignalingServer
from signaling.turn import DEFAULT_TTL_SECONDS

DESCRIPTION = """\
AssessIQ signaling server. Peers join a room (one host, one candidate) over a WebSocket at
/ws and relay their end-to-end-encrypted handshake through it; the server never sees the
contents. GET /healthz reports room and connection counts. Protocol: docs/protocol.md."""

EPILOG = """\
Settings are taken from the defaults, then --config FILE (TOML: host, port, log_level and a
[limits] table named like the limit flags, with underscores for dashes), then the flags.
Example: assessiq-signaling --host 0.0.0.0 --port 8765 --max-rooms-per-ip 8
With a relay: ASSESSIQ_TURN_SECRET=... assessiq-signaling --turn-url turn:turn.example.org:3478"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assessiq-signaling", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; "
                                       "use 0.0.0.0 to serve other machines)")
    parser.add_argument("--port", type=int, help="TCP port (default 8765; 0 picks a free one)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        type=str.upper, help="logging level (default INFO)")
    turn = parser.add_argument_group(
        "TURN credentials (a client that joined a room gets a short-lived TURN username and "
        "password for these URLs; the secret, shared with coturn's static-auth-secret, comes "
        f"from ${TURN_SECRET_ENV} or the [turn] table of --config, never from a flag)")
    turn.add_argument("--turn-url", action="append", dest="turn_urls", metavar="URL",
                      help="a stun:/turn:/turns: URL to hand out (repeat for several)")
    turn.add_argument("--turn-ttl-seconds", type=float, metavar="S",
                      help=f"how long each issued pair is valid [{DEFAULT_TTL_SECONDS:g}]")
    limits = parser.add_argument_group("limits (defaults in brackets)")
    defaults = Limits()
    for f in fields(Limits):
        default = getattr(defaults, f.name)
        kind = int if isinstance(default, int) else float
        limits.add_argument("--" + f.name.replace("_", "-"), type=kind, dest=f.name,
                            metavar="N", help=f"{f.metadata['help']} [{default:g}]")
    return parser


async def _serve(config: ServerConfig) -> None:
    server = SignalingServer(config)
    await server.start()
    print(f"assessiq-signaling listening on ws://{config.host}:{server.port}/ws",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        config = load_config(args.config, overrides)
    except SignalingError as exc:
        print(f"assessiq-signaling: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"assessiq-signaling: cannot listen on {config.host}:{config.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
