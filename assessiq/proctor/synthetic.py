"""A synthetic camera: scenes composed from real photos, played from a scripted timeline.

    cam = SyntheticCamera([(5, "present"), (10, "absent"), (5, "present")], fps=15)
    for t, frame in cam: ...            # simulated clock: as fast as you can consume
    async for t, frame in cam.stream(): ...   # paced in real time

Every frame carries fresh sensor noise (so only the "frozen" scene repeats a frame exactly);
everything is deterministic for a given seed. `cam.plants()` lists when each scene ran, the
ground truth the detectors are checked against.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from .facewarp import close_eyes, face_landmarks, shift_irises, turn_head
from .frames import Frame
from .photos import FACE_PHOTOS, photo

__all__ = ["Plant", "Scene", "SyntheticCamera", "parse_timeline"]

Image = npt.NDArray[np.uint8]
W, H = 640, 480


class Scene(StrEnum):
    """What the synthetic camera shows. Left/right are directions in the image."""

    PRESENT = "present"  # the candidate, swaying slightly
    ABSENT = "absent"  # the empty room
    TWO_FACES = "two_faces"  # the candidate and a second person side by side
    TURNED_LEFT = "turned_left"  # head turned ~55° towards the image's left
    TURNED_RIGHT = "turned_right"
    SMALL_MOVES = "small_moves"  # the head moving ±12° and nodding a little (honest)
    GLANCE_LEFT = "glance_left"  # eyes (not head) turned to the image's left
    GLANCE_RIGHT = "glance_right"
    BLINK = "blink"  # eyes shut
    DIM = "dim"  # the light drops to 45 % (honest)
    OCCLUDED = "occluded"  # a mug in front of the chin and mouth (honest)
    DARK = "dark"  # lights off: the scene at 5 % brightness
    COVERED = "covered"  # a finger over the lens
    FROZEN = "frozen"  # the camera repeats its last frame


@dataclass(frozen=True)
class Plant:
    """One timeline entry placed on the clock."""

    scene: Scene
    start: float
    end: float


def parse_timeline(text: str) -> list[tuple[float, Scene]]:
    """Parse "present:5,absent:10,present:5" (scene:seconds, comma-separated)."""
    out: list[tuple[float, Scene]] = []
    for part in text.split(","):
        name, sep, secs = part.strip().partition(":")
        try:
            scene = Scene(name.strip())
            duration = float(secs) if sep else float("nan")
        except ValueError:
            raise ValueError(
                f"bad timeline entry {part.strip()!r}: want scene:seconds, scenes: "
                + ", ".join(s.value for s in Scene)
            ) from None
        if not duration > 0:
            raise ValueError(f"bad timeline entry {part.strip()!r}: seconds must be > 0")
        out.append((duration, scene))
    return out


class SyntheticCamera:
    """Frames (t, BGR 640×480) for a timeline of (seconds, scene)."""

    def __init__(
        self,
        timeline: Sequence[tuple[float, Scene | str]],
        *,
        fps: float = 15.0,
        start: float = 0.0,
        face: str = "astronaut",
        seed: int = 0,
        noise: int = 3,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        if face not in FACE_PHOTOS:
            raise ValueError(f"face must be one of {', '.join(FACE_PHOTOS)}")
        self.timeline = [(float(d), Scene(s)) for d, s in timeline]
        if not self.timeline or any(d <= 0 for d, _ in self.timeline):
            raise ValueError("the timeline needs entries with durations > 0")
        self.fps = fps
        self.start = start
        self.face = face
        self.seed = seed
        self._noise = _noise_bank(seed, noise)
        self._frames = _scene_frames(face)
        self.duration = sum(d for d, _ in self.timeline)

    def plants(self) -> list[Plant]:
        out, t = [], self.start
        for d, scene in self.timeline:
            out.append(Plant(scene, t, t + d))
            t += d
        return out

    def __len__(self) -> int:
        return math.ceil(self.duration * self.fps - 1e-9)

    def scene_at(self, t: float) -> Scene:
        rel = t - self.start
        for d, scene in self.timeline:
            if rel < d:
                return scene
            rel -= d
        return self.timeline[-1][1]

    def __iter__(self) -> Iterator[Frame]:
        last: Image | None = None
        for i in range(len(self)):
            t = self.start + i / self.fps
            frame = self.render(self.scene_at(t), i, last)
            last = frame
            yield t, frame

    async def stream(self) -> AsyncIterator[Frame]:
        """The same frames paced in real time; `t` is wall-clock time (time.time())."""
        t0 = time.time()
        self.start = t0
        last: Image | None = None
        for i in range(len(self)):
            due = t0 + i / self.fps
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self.render(self.scene_at(due), i, last)
            last = frame
            yield due, frame

    def render(self, scene: Scene, i: int, last: Image | None = None) -> Image:
        """Frame number `i` of `scene` (`last` is what a frozen camera repeats)."""
        if scene is Scene.FROZEN:
            if last is None:
                last = self.render(Scene.PRESENT, i)
            return last
        t = i / self.fps
        key = scene.value
        if scene is Scene.SMALL_MOVES:
            key = ("small_left", "present", "small_right", "nod", "present")[int(t / 0.6) % 5]
        base = self._frames[key]
        # a slow sway of a few pixels, like a person breathing and shifting
        dx = round(6 + 5 * math.sin(2 * math.pi * t / 4.0))
        dy = round(6 + 3 * math.sin(2 * math.pi * t / 6.5))
        view = base[dy : dy + H, dx : dx + W]
        plus, minus = self._noise[i % len(self._noise)], self._noise[(i * 3 + 1) % len(self._noise)]
        noisy: Image = np.asarray(cv2.subtract(cv2.add(view, plus), minus), dtype=np.uint8)
        return noisy


def _noise_bank(seed: int, level: int) -> list[Image]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, level + 1, (H, W, 3), dtype=np.uint8) for _ in range(7)]


_PAD = 12  # the rendered scenes are this much larger on each axis, for the sway


def _room() -> Image:
    """A plain room: a lit wall with a door, a shelf and a picture frame."""
    yy, xx = np.mgrid[0 : H + _PAD, 0 : W + _PAD].astype(np.float32)
    light = 150 + 40 * np.exp(-(((xx - 420) / 380) ** 2) - ((yy - 80) / 300) ** 2)
    wall = np.stack([light * 0.92, light * 0.97, light], axis=-1)
    img: Image = np.clip(wall, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (40, 90), (170, H + _PAD), (70, 95, 120), -1)  # door
    cv2.rectangle(img, (52, 102), (158, H + _PAD), (85, 115, 145), -1)
    cv2.circle(img, (148, 300), 6, (40, 160, 200), -1)
    cv2.rectangle(img, (480, 150), (640, 162), (60, 80, 100), -1)  # shelf
    for k, colour in enumerate([(40, 40, 160), (150, 60, 40), (40, 120, 40), (30, 150, 170)]):
        cv2.rectangle(img, (492 + 26 * k, 96 + 6 * (k % 2)), (512 + 26 * k, 150), colour, -1)
    cv2.rectangle(img, (250, 40), (390, 120), (50, 50, 50), 4)  # picture frame
    return img


@dataclass(frozen=True)
class _Placed:
    """A portrait crop and how photo pixels map onto it: crop = (photo - origin) * scale."""

    image: Image
    origin: tuple[float, float]
    scale: float


def _portrait_crop(img: Image, points: npt.NDArray[np.float64], face_px: float) -> _Placed:
    """Head and shoulders around the face, scaled so the face is `face_px` tall."""
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    fh = y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.55 * fh
    half_w, half_h = 1.25 * fh, 1.45 * fh
    h, w = img.shape[:2]
    a, b = max(0, round(cx - half_w)), min(w, round(cx + half_w))
    c, d = max(0, round(cy - half_h)), min(h, round(cy + half_h))
    scale = face_px / fh
    size = (max(1, round((b - a) * scale)), max(1, round((d - c) * scale)))
    crop = cv2.resize(img[c:d, a:b], size, interpolation=cv2.INTER_AREA)
    return _Placed(np.asarray(crop, dtype=np.uint8), (float(a), float(c)), scale)


def _paste(canvas: Image, placed: _Placed, cx: int) -> tuple[float, float]:
    """Paste a portrait with its bottom on the canvas' bottom edge, centred at `cx`; returns
    where the crop's top-left corner landed (it may be off the canvas)."""
    crop = placed.image
    ch, cw = crop.shape[:2]
    top = canvas.shape[0] - ch
    x0 = max(0, cx - cw // 2)
    x1 = min(canvas.shape[1], x0 + cw)
    vis = min(ch, canvas.shape[0])
    canvas[canvas.shape[0] - vis :, x0:x1] = crop[ch - vis :, : x1 - x0]
    return float(x0), float(top)


def _to_canvas(
    points: npt.NDArray[np.float64], placed: _Placed, at: tuple[float, float]
) -> npt.NDArray[np.float64]:
    xy = (points[:, :2] - np.array(placed.origin)) * placed.scale
    return np.asarray(xy + np.array(at), dtype=np.float64)


@functools.lru_cache(maxsize=4)
def _scene_frames(face: str) -> dict[str, Image]:
    """Every still the scenes are made of, rendered once per face photo."""
    img = photo(face)
    pts = face_landmarks(img)
    other_name = next(n for n in FACE_PHOTOS if n != face)
    other = photo(other_name)
    other_pts = face_landmarks(other)
    room = _room()
    centre = (W + _PAD) // 2

    def person(variant: Image, face_px: float = 150, at: int = centre) -> Image:
        canvas = room.copy()
        _paste(canvas, _portrait_crop(variant, pts, face_px), at)
        return canvas

    present = person(img)
    placed = _portrait_crop(img, pts, 150)
    face_on_canvas = _to_canvas(pts, placed, _paste(room.copy(), placed, centre))
    frames: dict[str, Image] = {
        "present": present,
        "absent": room.copy(),
        "turned_left": person(turn_head(img, pts, -55)),
        "turned_right": person(turn_head(img, pts, 55)),
        "small_left": person(turn_head(img, pts, -12)),
        "small_right": person(turn_head(img, pts, 12)),
        "glance_left": person(shift_irises(img, pts, -0.35)),
        "glance_right": person(shift_irises(img, pts, 0.35)),
        "blink": person(close_eyes(img, pts)),
        "dim": np.asarray(cv2.convertScaleAbs(present, alpha=0.45), dtype=np.uint8),
        "dark": np.asarray(cv2.convertScaleAbs(present, alpha=0.05), dtype=np.uint8),
    }
    # a small nod: the portrait a little lower and squashed vertically
    nod = room.copy()
    ph, pw = placed.image.shape[:2]
    squashed = cv2.resize(placed.image, (pw, round(ph * 0.95)))
    _paste(nod, _Placed(np.asarray(squashed, dtype=np.uint8), placed.origin, placed.scale), centre)
    frames["nod"] = nod
    two = room.copy()
    _paste(two, _portrait_crop(img, pts, 115), centre - 160)
    _paste(two, _portrait_crop(other, other_pts, 115), centre + 160)
    frames["two_faces"] = two
    frames["occluded"] = _with_mug(present, face_on_canvas)
    covered = np.zeros_like(room)
    _yy, xx = np.mgrid[0 : covered.shape[0], 0 : covered.shape[1]].astype(np.float32)
    glow = 18 + 10 * np.exp(-(((xx - 500) / 300) ** 2))
    covered[:] = np.stack([glow * 0.5, glow * 0.6, glow], axis=-1).astype(np.uint8)
    frames["covered"] = covered
    return frames


def _with_mug(frame: Image, face: npt.NDArray[np.float64]) -> Image:
    """A mug held in front of the mouth and chin (`face`: the landmarks on this frame)."""
    out = frame.copy()
    mouth, chin = face[13], face[152]
    fw = float(face[:468, 0].max() - face[:468, 0].min())
    x0, x1 = round(mouth[0] - 0.1 * fw), round(mouth[0] + 0.45 * fw)
    top = round(mouth[1] - 0.03 * fw)
    bottom = round(chin[1] + 0.6 * fw)
    cv2.rectangle(out, (x0, top), (x1, bottom), (235, 235, 240), -1)
    cv2.ellipse(out, (x1 + 12, (top + bottom) // 2), (18, 28), 0, -90, 90, (225, 225, 230), 9)
    band = top + (bottom - top) // 3
    cv2.rectangle(out, (x0, band), (x1, band + 16), (40, 40, 170), -1)
    return out
