"""Command-line options more than one command shares (not a command itself: no `register`)."""

from __future__ import annotations

import argparse

__all__ = ["add_device_options"]


def add_device_options(p: argparse.ArgumentParser) -> None:
    """`--camera` and `--microphone` as the two apps take them."""
    p.add_argument("--camera", default="auto", metavar="DEVICE",
                   help="auto (the first camera; none found: no video), none, a device, or "
                        "synthetic (a generated picture, for demos; the other side is told)")
    p.add_argument("--microphone", default="auto", metavar="DEVICE",
                   help="auto (the first microphone; none found: no sound from this side), "
                        "none, a device from `assessiq devices` (e.g. hw:1,0), or synthetic "
                        "(a 440 Hz tone, for demos)")
