"""FaceMesh's landmark post-processing, in numpy: what its graph's TensorsToLandmarks,
LandmarksRefinement, LandmarkProjection, LandmarksToDetection, DetectionsToRects and
RectTransformation calculators do to the attention model's output tensors for one face.

`MeshPost` is built from the nodes of the expanded bundled graph (their own options: the
refinement index maps, tensor sizes, ROI rotation keypoints and scale), and computed in
float32 like the calculators; the landmarks agree with the graph's to float rounding (tested).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core.varints import read_varint

__all__ = ["MeshPost", "Rect", "floats_of_embeddings"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Rect:
    """A normalized rotated rectangle (MediaPipe's NormalizedRect)."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float


@dataclass(frozen=True)
class _Refinement:
    index: npt.NDArray[np.intp]
    z: str  # "copy", "none" or "assign_average"
    average: npt.NDArray[np.intp]


class MeshPost:
    """Tensors → landmarks (3, 478) in the image's normalized coordinates, and the next ROI."""

    def __init__(self, sizes: list[int], input_size: tuple[int, int],
                 refinements: list[_Refinement], rotation_ids: tuple[int, int],
                 target_angle: float, scale: tuple[float, float], square_long: bool,
                 order: list[int], flag: int) -> None:
        self.sizes = sizes  # landmarks in each refinement's tensor
        self.order = order  # the model output (embedding) feeding each refinement
        self.flag = flag  # the model output holding the face flag
        self.input_w, self.input_h = np.float32(input_size[0]), np.float32(input_size[1])
        self.refinements = refinements
        self.count = 1 + max(int(r.index.max()) for r in refinements)
        self.rotation_ids = rotation_ids
        self.target_angle = target_angle
        self.scale = scale
        self.square_long = square_long
        self._layout: _Layout | None = None

    @classmethod
    def from_graph(cls, nodes: dict[str, Any], ttl: list[str], refinement: str, to_rect: str,
                   transform: str, order: list[int], flag: int) -> MeshPost:
        from mediapipe.calculators.tensor import tensors_to_landmarks_calculator_pb2 as tl
        from mediapipe.calculators.util import detections_to_rects_calculator_pb2 as dr
        from mediapipe.calculators.util import landmarks_refinement_calculator_pb2 as lr
        from mediapipe.calculators.util import rect_transformation_calculator_pb2 as rt

        sizes = []
        input_size = (0, 0)
        for name in ttl:
            o = _options(nodes[name], tl.TensorsToLandmarksCalculatorOptions)
            if o.flip_horizontally or o.flip_vertically or o.normalize_z not in (0.0, 1.0):
                raise ValueError("unexpected TensorsToLandmarks options")
            sizes.append(o.num_landmarks)
            input_size = (o.input_image_width, o.input_image_height)
        refs = []
        for r in _options(nodes[refinement], lr.LandmarksRefinementCalculatorOptions).refinement:
            kind = r.z_refinement.WhichOneof("z_refinement_options")
            refs.append(_Refinement(np.array(r.indexes_mapping, np.intp), str(kind),
                                    np.array(r.z_refinement.assign_average.indexes_for_average,
                                             np.intp)))
        d = _options(nodes[to_rect], dr.DetectionsToRectsCalculatorOptions)
        t = _options(nodes[transform], rt.RectTransformationCalculatorOptions)
        if t.shift_x or t.shift_y or t.rotation or t.rotation_degrees or t.square_short:
            raise ValueError("unexpected RectTransformation options")
        return cls(sizes, input_size, refs,
                   (d.rotation_vector_start_keypoint_index, d.rotation_vector_end_keypoint_index),
                   math.radians(d.rotation_vector_target_angle_degrees),
                   (t.scale_x, t.scale_y), t.square_long, order, flag)

    def read(self, blob: bytes, roi: Rect, threshold: float) -> F32 | None:
        """The model's tensors (a serialized EmbeddingResult) → refined landmarks projected
        onto the image from `roi`: array (3, n) of x, y (normalized) and z (in x's scale);
        None when the face flag through a sigmoid, in float32 (TensorsToFloatsCalculator),
        is not above `threshold` (the face is lost)."""
        lay = self._layout_of(blob)
        flag = np.frombuffer(blob, "<f4", 1, lay.flag)[0]
        one = np.float32(1.0)
        if not float(one / (one + np.exp(-flag))) > threshold:
            return None
        raw = np.frombuffer(blob, np.uint8)
        xy = raw[lay.xy].view("<f4").reshape(-1, 2)
        x = xy[:, 0] / self.input_w
        y = xy[:, 1] / self.input_h
        z = np.zeros(self.count, np.float32)
        z[lay.z_at] = raw[lay.z].view("<f4") / self.input_w
        for at, average in lay.averages:  # assign_average: the mean z (double) of those points
            z[at] = np.float32((raw[average].view("<f4") / self.input_w).astype(np.float64)
                               .mean())
        # LandmarkProjection: rotate about the ROI's centre, scale to it, z like x
        c, s = np.float32(_cosf(roi.rotation)), np.float32(_sinf(roi.rotation))
        x -= np.float32(0.5)
        y -= np.float32(0.5)
        w, h = np.float32(roi.width), np.float32(roi.height)
        rows = np.empty((3, self.count), np.float32)
        rows[0] = (c * x - s * y) * w + np.float32(roi.x_center)
        rows[1] = (s * x + c * y) * h + np.float32(roi.y_center)
        rows[2] = z * w
        return rows

    def _layout_of(self, blob: bytes) -> _Layout:
        lay = self._layout
        if lay is None or len(blob) != lay.size or any(
                blob[a:b] != head for a, b, head in lay.heads):
            lay = self._layout = self._new_layout(blob)
        return lay

    def _new_layout(self, blob: bytes) -> _Layout:
        """Where each landmark's floats sit in a blob like this one (the same model gives the
        same layout every frame; `_layout_of` checks every non-float byte before reusing it)."""
        spans = _embedding_spans(blob)
        if len(spans) <= max(*self.order, self.flag):
            raise ValueError(f"expected the model's {1 + self.flag} tensors, got {len(spans)}")
        xy = np.full((self.count, 2), -1, np.intp)  # byte offset of each x and y
        z: dict[int, int] = {}
        averages: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
        for n, ref, k in zip(self.sizes, self.refinements, self.order, strict=True):
            start, end = spans[k]
            dims = (end - start) // 4 // n
            if dims < 2 or dims * n * 4 != end - start or len(ref.index) != n:
                raise ValueError("unexpected landmark tensor size")
            at = start + 4 * dims * np.arange(n)
            xy[ref.index, 0], xy[ref.index, 1] = at, at + 4
            if ref.z == "copy" and dims >= 3:
                z.update(zip(ref.index.tolist(), (at + 8).tolist(), strict=True))
            elif ref.z == "assign_average":
                if not all(i in z for i in ref.average.tolist()):
                    raise ValueError("an average of z that is not copied")
                average = np.array([z[i] for i in ref.average.tolist()], np.intp)
                averages.append((ref.index, _bytes_of(average)))
                for i in ref.index.tolist():
                    z.pop(i, None)
        if (xy < 0).any():
            raise ValueError("landmarks no tensor sets")
        z_at = np.array(sorted(z), np.intp)
        heads, pos = [], 0
        for start, end in sorted(spans):
            heads.append((pos, start, blob[pos:start]))
            pos = end
        heads.append((pos, len(blob), blob[pos:]))
        return _Layout(len(blob), heads, _bytes_of(xy.ravel()), z_at,
                       _bytes_of(np.array([z[i] for i in z_at.tolist()], np.intp)),
                       averages, spans[self.flag][0])

    def roi(self, rows: F32, width: int, height: int) -> Rect:
        """The next frame's ROI from these landmarks (FaceMesh's landmarks→ROI nodes), in
        float32 step for step like them: the tracking feeds back, so a rounding difference
        here would grow into visibly different landmarks a few frames later."""
        f = np.float32
        xs, ys = rows[0], rows[1]
        x0, y0 = xs.min(), ys.min()
        bw, bh = xs.max() - x0, ys.max() - y0
        cx, cy = x0 + bw / f(2), y0 + bh / f(2)
        a, b = self.rotation_ids
        fw, fh = f(width), f(height)
        dx = xs[b] * fw - xs[a] * fw
        dy = ys[b] * fh - ys[a] * fh
        turn = f(_atan2f(float(-dy), float(dx)))
        rotation = f(_normalize(float(f(self.target_angle) - turn)))
        rw, rh = bw, bh
        if self.square_long:
            side = max(rw * fw, rh * fh)
            rw, rh = side / fw, side / fh
        return Rect(float(cx), float(cy), float(rw * f(self.scale[0])),
                    float(rh * f(self.scale[1])), float(rotation))


def _libm() -> tuple[Callable[[float, float], float], Callable[[float], float],
                    Callable[[float], float]]:
    """The C library's float atan2f, cosf and sinf (the calculators' std::atan2 / std::cos /
    std::sin on floats), or Python's double functions where it cannot be loaded (results then
    differ in the last bit now and then, and the tracked landmarks by ~1e-4 of the image)."""
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name) if name else None
        atan2f, cosf, sinf = lib.atan2f, lib.cosf, lib.sinf  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return math.atan2, math.cos, math.sin
    for fn, args in ((atan2f, [ctypes.c_float, ctypes.c_float]), (cosf, [ctypes.c_float]),
                     (sinf, [ctypes.c_float])):
        fn.restype, fn.argtypes = ctypes.c_float, args
    return atan2f, cosf, sinf


_atan2f, _cosf, _sinf = _libm()


def _normalize(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _options(node: Any, kind: Any) -> Any:
    if node.options.HasExtension(kind.ext):
        return node.options.Extensions[kind.ext]
    for any_options in node.node_options:
        out = kind()
        if any_options.Unpack(out):
            return out
    return kind()


@dataclass(frozen=True)
class _Layout:
    size: int
    heads: list[tuple[int, int, bytes]]  # every byte that is not a float, where it sits
    xy: npt.NDArray[np.intp]  # the bytes of every landmark's x and y, in order
    z_at: npt.NDArray[np.intp]  # the landmarks whose z is copied from a tensor...
    z: npt.NDArray[np.intp]  # ...and the bytes of those z
    averages: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]  # points, bytes of z
    flag: int  # byte offset of the face flag


def _bytes_of(offsets: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Byte offsets of float32 values → the indexes of their 4 bytes each."""
    return (offsets[:, None] + np.arange(4)).ravel()


def floats_of_embeddings(blob: bytes) -> list[F32]:
    """A serialized EmbeddingResult (float embeddings) → each embedding's values, in order."""
    return [np.frombuffer(blob, "<f4", (end - start) // 4, start)
            for start, end in _embedding_spans(blob)]


def _embedding_spans(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) bytes of each embedding's packed float values in an EmbeddingResult."""
    out: list[tuple[int, int]] = []
    for field, start, end, _ in _fields(blob, 0, len(blob)):
        if field != 1:
            continue
        spans = [(s3, e3) for f2, s2, e2, _ in _fields(blob, start, end) if f2 == 1  # Embedding
                 for f3, s3, e3, wire in _fields(blob, s2, e2)
                 if f3 == 1 and wire == 2]  # FloatEmbedding.values, packed
        if len(spans) != 1:
            raise ValueError("expected one packed float embedding per tensor")
        out.append(spans[0])
    return out


def _fields(blob: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, start, end, wire type) of each length-delimited or fixed32 field in
    blob[pos:end] (varint and fixed64 fields are skipped)."""
    found = []
    while pos < end:
        key, pos = read_varint(blob, pos)
        wire = key & 7
        if wire == 2:
            size, pos = read_varint(blob, pos)
            if pos + size > end:
                raise ValueError("a truncated protobuf message")
            found.append((key >> 3, pos, pos + size, wire))
            pos += size
        elif wire == 5:
            found.append((key >> 3, pos, pos + 4, wire))
            pos += 4
        elif wire == 0:
            _, pos = read_varint(blob, pos)
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if pos != end:
        raise ValueError("a truncated protobuf message")
    return found
