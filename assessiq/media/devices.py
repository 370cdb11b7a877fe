"""Cameras and microphones: list them, and open one as an aiortc track.

Capture goes through FFmpeg's device inputs via aiortc's `MediaPlayer` (PyAV): `v4l2` and
`alsa` on Linux, `avfoundation` on macOS, `dshow` on Windows. A device is named the way that
platform's input wants it:

    Linux    camera "/dev/video0"            microphone "default" or "hw:1,0"
    macOS    camera "0" (an index)           microphone "0"
    Windows  camera "Integrated Camera"      microphone "Microphone Array (Realtek)"

Opening fails with NoDeviceError ("no camera found ...") or DeviceBusyError ("camera busy
...") rather than FFmpeg's own wording.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from .errors import DeviceBusyError, DeviceError, NoDeviceError

__all__ = ["Device", "default_device", "list_cameras", "list_microphones", "open_camera",
           "open_microphone", "platform_format"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    """A capture device: `id` is what `open_camera`/`open_microphone` take."""

    kind: str  # "camera" or "microphone"
    id: str
    name: str


def platform_format(kind: str, platform: str | None = None) -> str:
    """FFmpeg's input format for cameras or microphones on this (or the named) platform."""
    p = platform or sys.platform
    if p.startswith("linux"):
        return "v4l2" if kind == "camera" else "alsa"
    if p == "darwin":
        return "avfoundation"
    if p.startswith("win"):
        return "dshow"
    raise DeviceError(f"no known {kind} input for platform {p!r}")


def list_cameras() -> list[Device]:
    """The cameras this machine has (empty when none, never an error)."""
    if sys.platform.startswith("linux"):
        return _linux_cameras(Path("/sys/class/video4linux"))
    return [d for d in _ffmpeg_list() if d.kind == "camera"]


def list_microphones() -> list[Device]:
    """The microphones this machine has (empty when none, never an error)."""
    if sys.platform.startswith("linux"):
        return _linux_microphones(Path("/proc/asound/pcm"))
    return [d for d in _ffmpeg_list() if d.kind == "microphone"]


def default_device(kind: str) -> str | None:
    """The first camera/microphone's id, or None when there is none."""
    found = list_cameras() if kind == "camera" else list_microphones()
    return found[0].id if found else None


def _linux_cameras(root: Path) -> list[Device]:
    out = []
    for node in sorted(root.glob("video*"), key=lambda p: int(p.name[5:] or 0)):
        index = _read(node / "index")
        if index not in (None, "0"):  # metadata nodes of the same camera
            continue
        out.append(Device("camera", f"/dev/{node.name}", _read(node / "name") or node.name))
    return out


def _linux_microphones(pcm: Path) -> list[Device]:
    out = []
    text = _read(pcm) or ""
    for line in text.splitlines():
        # "00-00: ALC257 Analog : ALC257 Analog : playback 1 : capture 1"
        m = re.match(r"(\d+)-(\d+): ([^:]*):.*capture", line)
        if m:
            card, dev = int(m.group(1)), int(m.group(2))
            out.append(Device("microphone", f"hw:{card},{dev}", m.group(3).strip()))
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ffmpeg_list() -> list[Device]:
    """Ask avfoundation/dshow to list devices (they answer in FFmpeg's log)."""
    import av
    import av.logging

    fmt = platform_format("camera")
    target = "" if fmt == "avfoundation" else "dummy"
    # listing "fails" after printing the list
    with av.logging.Capture() as lines, contextlib.suppress(Exception):
        av.open(target, format=fmt, options={"list_devices": "true"})
    return parse_device_list(fmt, [str(line[2]) for line in lines])


def parse_device_list(fmt: str, lines: list[str]) -> list[Device]:
    """Parse FFmpeg's `-list_devices true` log lines for avfoundation or dshow."""
    out: list[Device] = []
    kind = "camera"
    for line in lines:
        low = line.lower()
        if "video devices" in low:
            kind = "camera"
            continue
        if "audio devices" in low:
            kind = "microphone"
            continue
        if fmt == "avfoundation":
            m = re.search(r"\[(\d+)\] (.+)", line)
            if m and "capture screen" not in m.group(2).lower():
                out.append(Device(kind, m.group(1), m.group(2).strip()))
        else:
            m = re.search(r'"([^"]+)"\s*\((video|audio)\)', line)
            if m:
                out.append(Device("camera" if m.group(2) == "video" else "microphone",
                                  m.group(1), m.group(1)))
            elif (m := re.search(r'^\s*"([^"@]+)"\s*$', line)) and "alternative" not in low:
                out.append(Device(kind, m.group(1), m.group(1)))
    return out


def _player_args(kind: str, device: str, fmt: str) -> tuple[str, str]:
    if fmt == "avfoundation":
        return (f"{device}:none" if kind == "camera" else f"none:{device}"), fmt
    if fmt == "dshow":
        return (f"video={device}" if kind == "camera" else f"audio={device}"), fmt
    return device, fmt


def _open(kind: str, device: str | None, fmt: str | None, options: dict[str, str]) -> Any:
    from aiortc.contrib.media import MediaPlayer

    fmt = fmt or platform_format(kind)
    if device is None:
        device = default_device(kind)
        if device is None:
            raise NoDeviceError(f"no {kind} found on this machine")
    target, fmt = _player_args(kind, device, fmt)
    try:
        return MediaPlayer(target, format=fmt, options=options)
    except Exception as exc:  # PyAV raises av.error.* (OSError subclasses) or ValueError
        raise _device_error(kind, device, exc) from exc


def _device_error(kind: str, device: str, exc: Exception) -> DeviceError:
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc)
    if code == errno.EBUSY:
        return DeviceBusyError(f"{kind} busy: {device} is in use by another app; close it "
                               "and try again")
    if code in (errno.EACCES, errno.EPERM):
        return DeviceError(f"{kind} {device}: permission denied (allow access to the {kind} "
                           "in your system settings)")
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return NoDeviceError(f"no {kind} found at {device}")
    return NoDeviceError(f"no {kind} found at {device}, or it cannot be opened ({reason})")


def open_camera(
    device: str | None = None,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    fmt: str | None = None,
) -> MediaStreamTrack:
    """Open a camera (the first one when `device` is None) as an aiortc video track."""
    options = {"video_size": f"{width}x{height}", "framerate": str(fps)}
    player = _open("camera", device, fmt, options)
    if player.video is None:
        raise NoDeviceError(f"no camera found at {device}: it gives no video")
    log.info("camera %s opened at %sx%s@%s", device, width, height, fps)
    track: MediaStreamTrack = player.video
    return track


def open_microphone(device: str | None = None, *, fmt: str | None = None) -> MediaStreamTrack:
    """Open a microphone (the first one when `device` is None) as an aiortc audio track."""
    fmt = fmt or platform_format("microphone")
    options = {"channels": "1", "sample_rate": "48000"} if fmt == "alsa" else {}
    player = _open("microphone", device, fmt, options)
    if player.audio is None:
        raise NoDeviceError(f"no microphone found at {device}: it gives no audio")
    log.info("microphone %s opened", device)
    track: MediaStreamTrack = player.audio
    return track
