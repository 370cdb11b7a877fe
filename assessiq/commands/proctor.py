"""`assessiq proctor ...`: run the proctor's analysis on files, a camera or the synthetic camera.

    assessiq proctor analyze FILE... [--json]     photos → faces/pose/gaze; videos → events
    assessiq proctor watch [--camera N | --synthetic TIMELINE] [--seconds S] [--json]
    assessiq proctor synth OUT.avi --timeline present:5,absent:10,present:5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Nothing of `assessiq.proctor` at module level: the package imports OpenCV, and every
# `assessiq` command imports this module to build its parser.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "proctor",
        help="analyse photos, videos, a camera or the synthetic camera with the proctor",
        description=(
            "The candidate-side proctor on its own: face count, head pose and gaze for photos; "
            "the integrity events its detectors produce for videos, a camera or the "
            "synthetic camera. Everything runs locally; nothing is sent anywhere."
        ),
    )
    cmds = p.add_subparsers(dest="proctor_command", metavar="ACTION")
    p.set_defaults(func=lambda args: _usage(p))

    a = cmds.add_parser(
        "analyze", aliases=["analyse"],
        help="analyse image and video files",
        description=(
            "For each image: the faces found, head yaw/pitch/roll (degrees), gaze and notable "
            "findings (null where no face). For each video: the events the detectors produce, "
            "with their start and end times in seconds from the start of the video."
        ),
    )
    a.add_argument("files", nargs="+", metavar="FILE", help="image or video files")
    a.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    a.add_argument("--rate", type=float, default=None, metavar="FPS",
                   help="video frames analysed per second (default: the proctor's maximum, 15)")
    a.set_defaults(func=_quietly(_analyze))

    w = cmds.add_parser(
        "watch", help="run the live proctor and print its events",
        description="Run the live proctor on a camera or the synthetic camera and print events "
                    "as they happen (heartbeats included).",
    )
    src = w.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N", help="camera index")
    src.add_argument("--synthetic", metavar="TIMELINE",
                     help="scene:seconds,... e.g. present:5,absent:10,present:5")
    w.add_argument("--seconds", type=float, default=None, help="stop after this long")
    w.add_argument("--json", action="store_true", help="one JSON object per event")
    w.set_defaults(func=_quietly(_watch))

    s = cmds.add_parser(
        "synth", help="write a synthetic-camera video",
        description="Render a synthetic-camera timeline (scenes composed from real photos) "
                    "to a video file (MJPG .avi). Scenes: present, absent, two_faces, "
                    "turned_left, turned_right, small_moves, glance_left, glance_right, blink, "
                    "dim, occluded, dark, covered, frozen.",
    )
    s.add_argument("out", help="output video file (.avi)")
    s.add_argument("--timeline", required=True, help="scene:seconds,...")
    s.add_argument("--fps", type=float, default=15.0, help="frames per second (default 15)")
    s.add_argument("--face", default="astronaut", choices=["astronaut", "grace_hopper"])
    s.set_defaults(func=_quietly(_synth))


@contextlib.contextmanager
def _quiet_native_logs(enabled: bool) -> Iterator[None]:
    """Send MediaPipe's C++ log lines (written straight to fd 2) to /dev/null, keeping Python's
    own stderr messages. Only when stderr is the real fd 2 (not under a capturing test)."""
    try:
        real = enabled and sys.stderr.fileno() == 2
    except (AttributeError, OSError, io.UnsupportedOperation):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    old = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old
        os.dup2(saved, 2)
        os.close(saved)


def _quietly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with _quiet_native_logs(getattr(args, "verbose", 0) == 0):
            return func(args)

    return run


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _fail(msg: str) -> int:
    print(f"assessiq proctor: {msg}", file=sys.stderr)
    return 2


def _loading(what: str) -> float:
    print(f"loading face models for {what} ...", file=sys.stderr, flush=True)
    return time.perf_counter()


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _analyze(args: argparse.Namespace) -> int:
    from ..proctor.errors import ProctorError
    from ..proctor.frames import VideoFileSource, read_image

    paths = [Path(f) for f in args.files]
    for p in paths:
        if not p.exists():
            return _fail(f"no such file: {p}")
        if p.is_dir():
            return _fail(f"{p} is a directory, not an image or video")
    if args.rate is not None and not args.rate > 0:
        return _fail("--rate must be > 0")
    from ..proctor.analyzer import FrameAnalyzer

    t0 = _loading(f"{len(paths)} file(s)")
    still = FrameAnalyzer(still_images=True)
    print(f"ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    code = 0
    try:
        for p in paths:
            try:
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    out = _image_result(p, still.analyse(read_image(p)))
                else:
                    out = _video_result(p, VideoFileSource(p), args.rate)
            except ProctorError as exc:
                print(f"assessiq proctor: {exc}", file=sys.stderr)
                code = 2
                continue
            _print(out, args.json)
    finally:
        still.close()
    return code


def _image_result(path: Path, f: Any) -> dict[str, Any]:
    pose, gaze = f.pose, f.gaze
    return {
        "file": str(path),
        "kind": "image",
        "faces": f.faces,
        "yaw": _r(pose.yaw) if pose else None,
        "pitch": _r(pose.pitch) if pose else None,
        "roll": _r(pose.roll) if pose else None,
        "gaze": None if gaze is None else {
            "horizontal": round(gaze.horizontal, 3), "vertical": round(gaze.vertical, 3),
            "direction": gaze.direction, "eyes_open": gaze.eyes_open,
        },
        "findings": f.labels(),
        "brightness": round(f.brightness, 1),
    }


def _video_result(path: Path, source: Any, rate: float | None) -> dict[str, Any]:
    from ..proctor.pipeline import analyse_stream

    events: list[dict[str, Any]] = []
    stats = analyse_stream(source, lambda k, d: events.append({"kind": k, **d}), rate=rate,
                           heartbeats=False)
    return {
        "file": str(path), "kind": "video", "frames": stats.frames, "analysed": stats.analysed,
        "seconds": round((stats.last_t or 0.0) - (stats.first_t or 0.0), 2), "events": events,
    }


def _print(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(out))
        return
    if out["kind"] == "image":
        pose = ("-" if out["yaw"] is None
                else f"yaw {out['yaw']:+.1f}° pitch {out['pitch']:+.1f}° roll {out['roll']:+.1f}°")
        gaze = out["gaze"]["direction"] if out["gaze"] else "-"
        print(f"{out['file']}: {out['faces']} face(s)  {pose}  gaze {gaze}  "
              f"[{', '.join(out['findings'])}]")
        return
    print(f"{out['file']}: {out['seconds']} s, {out['analysed']} of {out['frames']} frames "
          f"analysed, {sum(1 for e in out['events'] if e['phase'] == 'end')} condition(s)")
    for e in out["events"]:
        print("  " + _event_line(e["kind"], e))


def _event_line(kind: str, d: dict[str, Any]) -> str:
    extra = {k: v for k, v in d.items()
             if k not in ("kind", "phase", "start", "end", "duration", "confidence")}
    tail = " ".join(f"{k}={v}" for k, v in extra.items())
    if d.get("phase") == "start":
        return f"{d['start']:9.2f}        start  {kind:15} conf {d['confidence']:.2f} {tail}"
    if d.get("phase") == "end":
        return (f"{d['start']:9.2f}–{d['end']:<8.2f} end    {kind:15} "
                f"{d['duration']:.1f} s conf {d['confidence']:.2f} {tail}")
    return f"{kind:15} {tail}"


def _watch(args: argparse.Namespace) -> int:
    from ..proctor.errors import ProctorError
    from ..proctor.frames import CameraSource
    from ..proctor.runner import Proctor
    from ..proctor.synthetic import SyntheticCamera, parse_timeline

    if args.seconds is not None and not args.seconds > 0:
        return _fail("--seconds must be > 0")
    try:
        if args.synthetic:
            timeline = parse_timeline(args.synthetic)
            source: Any = SyntheticCamera(timeline).stream()
        else:
            source = CameraSource(args.camera or 0)
    except (ValueError, ProctorError) as exc:
        return _fail(str(exc))
    t_start = time.time()

    def sink(kind: str, data: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"kind": kind, **data}), flush=True)
            return
        shown = dict(data)
        for key in ("start", "end"):
            if key in shown:
                shown[key] = round(shown[key] - t_start, 2)
        print(_event_line(kind, shown), flush=True)

    proctor = Proctor(sink)

    async def main() -> None:
        task = asyncio.create_task(proctor.run(source))
        done, _ = await asyncio.wait({task}, timeout=args.seconds)
        if not done:
            proctor.stop()
        await task

    t0 = _loading("the live proctor")
    try:
        asyncio.run(main())
    except ProctorError as exc:
        return _fail(str(exc))
    finally:
        if hasattr(source, "close"):
            source.close()
    s = proctor.stats
    print(f"done in {time.perf_counter() - t0:.1f} s: {s.frames} frames, {s.analysed} analysed, "
          f"{s.dropped} dropped", file=sys.stderr)
    return 0


def _synth(args: argparse.Namespace) -> int:
    import cv2

    from ..proctor.errors import ProctorError
    from ..proctor.synthetic import SyntheticCamera, parse_timeline

    try:
        cam = SyntheticCamera(parse_timeline(args.timeline), fps=args.fps, face=args.face)
    except (ValueError, ProctorError) as exc:
        return _fail(str(exc))
    out = Path(args.out)
    if not out.parent.exists():
        return _fail(f"no such directory: {out.parent}")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), args.fps, (640, 480))
    if not writer.isOpened():
        return _fail(f"cannot write a video to {out} (use an .avi name)")
    try:
        for _t, frame in cam:
            writer.write(frame)
    finally:
        writer.release()
    print(f"wrote {out}: {len(cam)} frames, {cam.duration:.1f} s", file=sys.stderr)
    return 0
