"""Per-frame analysis with MediaPipe's bundled models: faces, head pose, gaze, light, freezes.

FaceMesh (refined, 478 landmarks) follows the main face cheaply from frame to frame; the
full-range face detector counts faces, including small or distant ones the mesh does not
track. The detector costs more than the mesh, so in a video it runs when it can tell
something: at once when the mesh loses its face or the picture outside the candidate's face
changes (someone walks in or leaves); every `detect_interval` seconds while the mesh has no
face or the detector last saw a face the mesh does not follow; otherwise every
`stable_interval` seconds. Nothing is downloaded: both models ship inside the mediapipe
0.10.21 wheel.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .config import AnalyzerConfig
from .findings import FaceBox, FrameFindings, Gaze, HeadPose
from .geometry import PoseSolver, gaze_from_landmarks
from .meshtrack import MeshTracker
from .mpgraph import LeanSolution, landmarks_from_bytes

__all__ = ["FrameAnalyzer", "load_mediapipe"]

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
_THUMB = (80, 60)  # light, texture and freeze are measured on this grey thumbnail
_GRID = (40, 30)  # scene changes are judged on this coarser grid (16×16 px cells at 640×480)
_KERNEL = np.ones((3, 3), np.uint8)
_BORDERS = (0.6, 0.4, 0.8)  # tiny photos: borders (× their enlarged side) tried in turn


def load_mediapipe() -> Any:
    """Import mediapipe's legacy solutions (slow the first time: ~1 s). Its C++ logging is
    quietened to errors unless GLOG_minloglevel / TF_CPP_MIN_LOG_LEVEL are already set."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mediapipe as mp

    return mp.solutions


@dataclass(frozen=True)
class _LastDetection:
    t: float
    boxes: tuple[FaceBox, ...]
    extra: bool  # it found a face the mesh did not
    low: npt.NDArray[np.int16]  # the scene grid then, eroded and dilated (shift-tolerant)
    high: npt.NDArray[np.int16]


class FrameAnalyzer:
    """Analyses BGR frames one at a time. Not thread-safe: use it from one thread.

    `still_images=True` treats every frame as unrelated (photos; tiny ones are enlarged
    first); otherwise frames are a video and the mesh tracks the face between them.
    `detections` counts the full-range detector's runs.
    """

    def __init__(self, config: AnalyzerConfig | None = None, *, still_images: bool = False) -> None:
        self.config = config or AnalyzerConfig()
        self.still_images = still_images
        t0 = time.perf_counter()
        solutions = load_mediapipe()
        self._mesh_solution: Any = None
        self._tracker: MeshTracker | None = None
        if still_images:  # every photo on its own, up to 4 faces
            self._mesh_solution = solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=4, refine_landmarks=True,
                min_detection_confidence=self.config.min_face_confidence,
            )
            self._photo_mesh = LeanSolution(self._mesh_solution, "image", "multi_face_landmarks")
        else:  # a video: FaceMesh follows one face (the same landmarks, a leaner graph)
            self._tracker = MeshTracker(self.config.min_face_confidence, 0.5)
        self._detector_solution = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=self.config.min_face_confidence
        )
        self._detector = LeanSolution(self._detector_solution, "image", "detections")
        log.info("face models loaded in %.2f s", time.perf_counter() - t0)
        self._pose = PoseSolver(self.config.pose_still_px)  # photos reset it per solve
        self._rgb: Image | None = None  # reused for every frame's RGB copy
        self._prev_thumb: Image | None = None
        self._last: _LastDetection | None = None
        self._had_mesh_face = False
        self._checked = -math.inf  # when the picture was last compared with the last detection
        self.detections = 0
        self.mesh_cpu = 0.0  # CPU seconds of the last frame's FaceMesh step
        self._closed = False

    @property
    def pose_solves(self) -> int:
        """How many frames the head pose was solved on (not reused)."""
        return self._pose.solves

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._mesh_solution is not None:
                self._mesh_solution.close()
            if self._tracker is not None:
                self._tracker.close()
            self._detector_solution.close()

    def __enter__(self) -> FrameAnalyzer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the previous frame (call between unrelated inputs)."""
        self._prev_thumb = None
        self._last = None
        self._had_mesh_face = False
        self._checked = -math.inf
        self._pose.reset()
        if self._tracker is not None:
            self._tracker.reset()

    def analyse(self, frame: Image, t: float = 0.0) -> FrameFindings:
        """Analyse one BGR frame taken at time `t` (seconds)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError("expected a BGR uint8 image of shape (h, w, 3)")
        cpu0 = time.process_time()
        cfg = self.config
        h, w = frame.shape[:2]
        if w > cfg.max_width:
            scale = cfg.max_width / w
            frame = np.asarray(cv2.resize(frame, (cfg.max_width, max(1, round(h * scale))),
                                          interpolation=cv2.INTER_AREA), dtype=np.uint8)
        elif self.still_images and min(h, w) < cfg.min_still_side:
            # a tiny photo: the face's size within the frame decides whether the detectors'
            # anchors catch it, so try it at three sizes and keep the first that finds a face
            tries = []
            for border in _BORDERS:
                tries.append(self._analyse(enlarge(frame, cfg.min_still_side, border), t, cpu0))
                if tries[-1].faces:
                    return tries[-1]
            return tries[0]
        return self._analyse(frame, t, cpu0)

    def _analyse(self, frame: Image, t: float, cpu0: float) -> FrameFindings:
        cfg = self.config
        h, w = frame.shape[:2]
        # light and freeze on a small grey thumbnail: every 8th pixel of a 640×480 frame
        # (sampling, not averaging, keeps sensor noise in it: a live camera never repeats it)
        small = cv2.resize(frame, _THUMB, interpolation=cv2.INTER_NEAREST)
        thumb = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        mean, std = cv2.meanStdDev(thumb)
        brightness, texture = float(mean[0, 0]), float(std[0, 0])
        if self._prev_thumb is None or self.still_images:
            motion = float("inf")
        else:
            motion = float(cv2.mean(cv2.absdiff(thumb, self._prev_thumb))[0])
        self._prev_thumb = thumb

        whole = self._whole_rgb(frame)
        mesh0 = time.process_time()
        faces_px = [self._pixels(rows, w, h) for rows in self._mesh_rows(frame, whole)]
        self.mesh_cpu = time.process_time() - mesh0
        mesh_boxes = [self._box_of(p, w, h) for p in faces_px]
        order = sorted(range(len(faces_px)), key=lambda i: -mesh_boxes[i].w * mesh_boxes[i].h)
        main_box = mesh_boxes[order[0]] if order else None
        detected = self._detect(frame, whole, t, main_box, mesh_boxes)
        self._had_mesh_face = main_box is not None
        boxes = [mesh_boxes[i] for i in order]
        boxes += [d for d in detected if not any(_same_face(d, m) for m in mesh_boxes)]

        pose: HeadPose | None = None
        gaze: Gaze | None = None
        if faces_px:
            main = faces_px[order[0]]
            if self.still_images:
                self._pose.reset()
            pose = self._pose.solve(main, w, h)
            if main.shape[0] >= 478:
                gaze = gaze_from_landmarks(main, cfg.eyes_closed_ratio)
        else:
            self._pose.reset()
        dark = brightness < cfg.dark_level
        covered = not boxes and (
            (brightness < cfg.covered_level and texture < cfg.covered_texture)
            or texture < cfg.covered_texture / 3
        )
        return FrameFindings(
            t=t, faces=len(boxes), boxes=tuple(boxes), pose=pose, gaze=gaze,
            brightness=round(brightness, 2), texture=round(texture, 2), dark=dark,
            covered=covered, frozen=motion <= cfg.frozen_diff,
            motion=round(motion, 3) if motion != float("inf") else -1.0,
            cpu_ms=round((time.process_time() - cpu0) * 1000, 3),
        )

    def _whole_rgb(self, frame: Image) -> Callable[[], Image]:
        """The frame's RGB copy for MediaPipe, made on the first call only (a followed face
        needs just its region, which the tracker converts itself)."""
        return cache(partial(self._rgb_of, frame))

    def _rgb_of(self, frame: Image) -> Image:
        """The frame in RGB for MediaPipe, written into one reused buffer (the graphs copy
        what they are given, so the buffer is free again once they return)."""
        if self._rgb is None or self._rgb.shape != frame.shape:
            self._rgb = np.empty_like(frame)
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=self._rgb)
        return self._rgb

    def _detect(self, frame: Image, whole: Callable[[], Image], t: float, main: FaceBox | None,
                mesh_boxes: list[FaceBox]) -> tuple[FaceBox, ...]:
        """Full-range detection now, or what the last run found while it is still valid."""
        cfg = self.config
        last = self._last
        if not self.still_images and last is not None and t >= last.t:
            since = t - last.t
            if main is None and self._had_mesh_face:
                due = True  # the mesh just lost its face: count what is there now
            else:
                every = cfg.detect_interval if last.extra or main is None else cfg.stable_interval
                due = since >= every or self._changed(frame, t, last, main)
            if not due:
                return last.boxes if since <= cfg.detection_memory else ()
        self.detections += 1
        boxes = []
        from mediapipe.framework.formats import detection_pb2

        for blob in self._detector.run(whole()):
            d = detection_pb2.Detection.FromString(blob)
            score = float(d.score[0]) if d.score else 0.0
            if score < cfg.min_face_confidence:
                continue
            r = d.location_data.relative_bounding_box
            boxes.append(FaceBox(round(r.xmin, 4), round(r.ymin, 4), round(r.width, 4),
                                 round(r.height, 4), round(score, 3), "detection"))
        extra = any(not any(_same_face(b, m) for m in mesh_boxes) for b in boxes)
        grid = _grid(frame)
        level = np.int16(round(cfg.change_level))
        low = np.asarray(cv2.erode(grid, _KERNEL), dtype=np.int16) - level
        high = np.asarray(cv2.dilate(grid, _KERNEL), dtype=np.int16) + level
        self._last = _LastDetection(t, tuple(boxes), extra, low, high)
        return self._last.boxes

    def _changed(self, frame: Image, t: float, last: _LastDetection, main: FaceBox | None
                 ) -> bool:
        """Whether the picture outside the face changed since the last detection; looked at
        every detect_interval / 2 seconds at most."""
        cfg = self.config
        if self._checked > t:  # the clock went back: a new stream
            self._checked = -math.inf
        if t - max(last.t, self._checked) < cfg.detect_interval / 2:
            return False
        self._checked = t
        return _changed_share(_grid(frame), last, main) >= cfg.change_share

    @staticmethod
    def _pixels(rows: npt.NDArray[np.float64], w: int, h: int) -> npt.NDArray[np.float64]:
        """Normalized landmark rows (3, n) → points (n, 3) in pixels (z in x's scale)."""
        rows[0] *= w
        rows[1] *= h
        rows[2] *= w
        return rows.T

    @staticmethod
    def _box_of(points: npt.NDArray[np.float64], w: int, h: int) -> FaceBox:
        xs, ys = points[:, 0], points[:, 1]
        x0, x1, y0, y1 = float(xs.min()) / w, float(xs.max()) / w, float(ys.min()) / h, \
            float(ys.max()) / h
        return FaceBox(round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4),
                       1.0, "mesh")

    def landmarks(self, frame: Image) -> list[npt.NDArray[np.float64]]:
        """FaceMesh landmarks (x, y in pixels, z in the same scale) of every face in `frame`."""
        h, w = frame.shape[:2]
        rows = self._mesh_rows(frame, self._whole_rgb(frame))
        return [self._pixels(r, w, h) for r in rows]

    def _mesh_rows(self, frame: Image, whole: Callable[[], Image]
                   ) -> list[npt.NDArray[np.float64]]:
        """FaceMesh's landmarks of the BGR `frame` as rows (3, n) of normalized x, y, z."""
        if self._tracker is not None:
            return self._tracker.follow(frame, whole)
        return [landmarks_from_bytes(b) for b in self._photo_mesh.run(whole())]



def enlarge(image: Image, side: int, border: float = 0.6) -> Image:
    """A tiny photo (a 25×25 face crop) made into one the models can read: scaled up
    (bilinear) so its shorter side is `side` px, then given a border of replicated edge pixels
    `border` × side wide on every side (a tight crop leaves the detectors no context).

    Bilinear rather than bicubic: at 6× and more, bicubic's overshoot draws halos along every
    edge. On lfw_subset's 25×25 crops each single border (0.4–0.8) misses 0–4 of the 100 faces
    (4, 9, 30, 59: found at one border, missed at another, even with one grey level of
    rounding changed); the three borders `analyse` tries find all 100, and none of the 100
    non-face crops gives a face at any of them."""
    h, w = image.shape[:2]
    scale = side / min(h, w)
    big = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                     interpolation=cv2.INTER_LINEAR)
    pad = round(side * border)
    return np.asarray(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE),
                      dtype=np.uint8)


def _grid(frame: Image) -> npt.NDArray[np.int16]:
    """The coarse grey scene grid: each cell averages 16 pixels sampled 4 apart (the 80×60
    thumbnail, sampled 8 apart, would let a 4 px line flicker in and out as the picture sways)."""
    sampled = cv2.resize(frame, (4 * _GRID[0], 4 * _GRID[1]), interpolation=cv2.INTER_NEAREST)
    grey = cv2.cvtColor(sampled, cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.resize(grey, _GRID, interpolation=cv2.INTER_AREA), dtype=np.int16)


def _changed_share(grid: npt.NDArray[np.int16], last: _LastDetection,
                   face: FaceBox | None) -> float:
    """The share of grid cells outside the (enlarged) face box whose grey level left the range
    its 3×3 neighbourhood had at the last detection: a shift of a cell or less (sway, camera
    shake) is not a change; a new object is."""
    out = (grid < last.low) | (grid > last.high)
    if face is None:
        return float(np.count_nonzero(out)) / out.size
    gh, gw = grid.shape
    mx, my = face.w * 0.3, face.h * 0.3
    x0, x1 = int((face.x - mx) * gw), int(np.ceil((face.x + face.w + mx) * gw))
    y0, y1 = int((face.y - my) * gh), int(np.ceil((face.y + face.h + my) * gh))
    out[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = False
    return float(np.count_nonzero(out)) / out.size


def _same_face(a: FaceBox, b: FaceBox) -> bool:
    """Whether two boxes are one face: they overlap well, or one's centre lies in the other."""
    cx, cy = a.x + a.w / 2, a.y + a.h / 2
    return _iou(a, b) >= 0.2 or (b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h)


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0
