"""Edit a real face photo the way a real head would move: turn it, move the irises, close the
eyes. The synthetic camera uses these to plant conditions with known ground truth.

The head turn rotates FaceMesh's 3D landmarks (plus two rings around the face, the outer one
fixed) about the vertical axis and warps the photo triangle by triangle, far triangles first,
so the nose really moves across the face and `solvePnP` sees a turned head.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from .analyzer import load_mediapipe
from .geometry import EYES

__all__ = ["close_eyes", "face_landmarks", "shift_irises", "turn_head"]

Image = npt.NDArray[np.uint8]
Points = npt.NDArray[np.float64]

_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
         377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
_EYE_RINGS = (
    [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
    [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398],
)
_IRIS_RINGS = ([469, 470, 471, 472], [474, 475, 476, 477])


def face_landmarks(img: Image) -> Points:
    """The 478 refined landmarks (x, y px; z at x's scale) of the largest face in a photo."""
    solutions = load_mediapipe()
    h, w = img.shape[:2]
    with solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    ) as mesh:
        found = mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    if not found:
        raise ValueError("no face in the photo")
    return np.array([(p.x * w, p.y * h, p.z * w) for p in found[0].landmark], dtype=np.float64)


def turn_head(img: Image, points: Points, degrees: float) -> Image:
    """The photo with the head turned by `degrees` about the vertical axis (positive turns
    the face towards the image's right)."""
    face = points[:468]
    centre = face.mean(axis=0)
    oval = face[_OVAL]
    ring = centre + (oval - centre) * np.array([1.35, 1.35, 1.0])
    ring[:, 2] = oval[:, 2]
    anchor = centre + (oval - centre) * np.array([2.2, 2.0, 0.0])
    pts = np.vstack([face, ring, anchor])
    theta = math.radians(-degrees)
    q = pts - centre
    x = q[:, 0] * math.cos(theta) + q[:, 2] * math.sin(theta)
    z = -q[:, 0] * math.sin(theta) + q[:, 2] * math.cos(theta)
    moving = len(face) + len(ring)
    dst = np.stack([x + centre[0], q[:, 1] + centre[1]], axis=1)
    dst[moving:] = pts[moving:, :2]
    z[moving:] = np.inf
    h, w = img.shape[:2]
    limit = np.array([w - 1, h - 1], dtype=np.float64)
    src = np.clip(pts[:, :2], 0, limit)
    dst = np.clip(dst, 0, limit)
    return _warp_triangles(img, src, dst, z)


def _warp_triangles(img: Image, src: Points, dst: Points, depth: npt.NDArray[np.float64]) -> Image:
    h, w = img.shape[:2]
    subdiv = cv2.Subdiv2D((0, 0, w, h))
    index: dict[tuple[float, float], int] = {}
    for i, (px, py) in enumerate(src):
        key = (float(np.float32(px)), float(np.float32(py)))
        if key in index:
            continue
        index[key] = i
        subdiv.insert(key)
    triangles = []
    for t in np.asarray(subdiv.getTriangleList()).reshape(-1, 3, 2):
        ids = [index.get((float(np.float32(a)), float(np.float32(b)))) for a, b in t]
        if all(i is not None for i in ids):
            triangles.append([int(i) for i in ids if i is not None])
    tri = np.array(triangles, dtype=np.int64)
    out = img.copy()
    for k in np.argsort(-depth[tri].max(axis=1), kind="stable"):
        s = src[tri[k]].astype(np.float32)
        d = dst[tri[k]].astype(np.float32)
        x0, y0, bw, bh = cv2.boundingRect(d)
        if bw < 2 or bh < 2:
            continue
        m = cv2.getAffineTransform(s, d - np.array([x0, y0], dtype=np.float32))
        patch = cv2.warpAffine(img, m, (bw, bh), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillConvexPoly(mask, np.round(d - [x0, y0]).astype(np.int32), (255,))
        region = out[y0 : y0 + bh, x0 : x0 + bw]
        sel = mask[: region.shape[0], : region.shape[1]] > 0
        region[sel] = patch[: region.shape[0], : region.shape[1]][sel]
    return out


def shift_irises(img: Image, points: Points, dx: float, dy: float = 0.0) -> Image:
    """The photo with both irises moved by `dx`, `dy` eye widths (positive: image right/down)."""
    out = img.copy()
    for (iris, left, right, _top, _bottom), ring, eye in zip(EYES, _IRIS_RINGS, _EYE_RINGS,
                                                            strict=True):
        eye_mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(eye_mask, [np.round(points[eye, :2]).astype(np.int32)], (255,))
        centre = points[iris, :2]
        radius = float(np.linalg.norm(points[ring, :2] - centre, axis=1).mean())
        iris_mask = np.zeros_like(eye_mask)
        cv2.circle(iris_mask, (round(centre[0]), round(centre[1])),
                   max(1, round(radius * 1.15)), (255,), -1)
        hole = np.asarray(cv2.bitwise_and(iris_mask, eye_mask), dtype=np.uint8)
        filled = np.asarray(cv2.inpaint(out, hole, 3, cv2.INPAINT_TELEA), dtype=np.uint8)
        width = float(abs(points[right, 0] - points[left, 0]))
        move = np.array([[1, 0, dx * width], [0, 1, dy * width]], dtype=np.float32)
        size = (img.shape[1], img.shape[0])
        moved = cv2.warpAffine(img, move, size)
        moved_mask = cv2.warpAffine(iris_mask, move, size)
        sel = cv2.bitwise_and(moved_mask, eye_mask) > 0
        filled[sel] = moved[sel]
        inside = eye_mask > 0
        out[inside] = filled[inside]
    return out


def close_eyes(img: Image, points: Points) -> Image:
    """The photo with both eyes shut (the eye openings painted over with the lids' skin)."""
    out = img.copy()
    for eye in _EYE_RINGS:
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(points[eye, :2]).astype(np.int32)], (255,))
        grown = np.asarray(cv2.dilate(mask, np.ones((3, 3), np.uint8)), dtype=np.uint8)
        out = np.asarray(cv2.inpaint(out, grown, 5, cv2.INPAINT_TELEA), dtype=np.uint8)
    return np.asarray(out, dtype=np.uint8)
