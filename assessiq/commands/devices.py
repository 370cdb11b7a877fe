"""`assessiq devices [--check]`: the cameras, microphones and speakers AssessIQ can use."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "devices", help="list the cameras, microphones and speakers, and check they open",
        description="List the capture and playback devices this computer offers. With --check, "
                    "also try to open the default camera and microphone and say plainly if one "
                    "is missing or busy (the interview still works without them).")
    p.add_argument("--check", action="store_true", help="try to open the default devices")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _try(kind: str) -> str | None:
    """None when the default device opened (and was closed again), else why not."""
    from ..media.devices import open_camera, open_microphone
    from ..media.errors import MediaError

    try:
        track = open_camera() if kind == "camera" else open_microphone()
    except MediaError as exc:
        return str(exc)
    track.stop()
    return None


def run(args: argparse.Namespace) -> int:
    from ..media.devices import list_cameras, list_microphones
    from ..media.playback import list_speakers

    found: dict[str, Any] = {
        "cameras": [{"id": d.id, "name": d.name} for d in list_cameras()],
        "microphones": [{"id": d.id, "name": d.name} for d in list_microphones()],
        "speakers": [{"id": i, "name": n} for i, n in list_speakers()],
    }
    if args.check:
        found["problems"] = {
            kind: problem for kind in ("camera", "microphone")
            if (problem := asyncio.run(asyncio.to_thread(_try, kind))) is not None
        }
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for kind in ("cameras", "microphones", "speakers"):
        devices = found[kind]
        if devices:
            print(f"{kind}:")
            for d in devices:
                print(f"  {d['id']}  {d['name']}")
        else:
            print(f"{kind}: none found")
    for kind, problem in found.get("problems", {}).items():
        print(f"{kind}: {problem} — the interview still works without it")
    if args.check and not found["problems"]:
        print("the default camera and microphone open")
    return 0
