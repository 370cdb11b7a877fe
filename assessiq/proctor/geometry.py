"""Head pose (cv2.solvePnP on canonical face points) and iris gaze from FaceMesh landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from .findings import Gaze, HeadPose

__all__ = ["EYES", "PoseSolver", "gaze_from_landmarks", "head_pose"]

Array = npt.NDArray[np.float64]

# Landmark index → point of MediaPipe's canonical face model (centimetres; x towards the
# subject's left, y up, z out of the face). From canonical_face_model.obj in mediapipe.
_CANONICAL: dict[int, tuple[float, float, float]] = {
    1: (0.0, -1.126865, 7.475604),  # nose tip
    152: (0.0, -9.403378, 4.264492),  # chin
    10: (0.0, 8.261778, 4.481535),  # top of the forehead
    33: (-4.445859, 2.663991, 3.173422),  # right eye, outer corner
    263: (4.445859, 2.663991, 3.173422),  # left eye, outer corner
    133: (-1.856432, 2.585245, 3.757904),  # right eye, inner corner
    362: (1.856432, 2.585245, 3.757904),  # left eye, inner corner
    61: (-2.456206, -4.342621, 4.283884),  # mouth, right corner
    291: (2.456206, -4.342621, 4.283884),  # mouth, left corner
}
_IDS = list(_CANONICAL)
_MODEL = np.array([_CANONICAL[i] for i in _IDS], dtype=np.float64)
# The canonical frame faces the camera when rotated by pi about x (camera: y down, z forward).
_RVEC0 = np.array([[math.pi], [0.0], [0.0]])
_TVEC0 = np.array([[0.0], [0.0], [60.0]])
_NO_DISTORTION = np.zeros((4, 1))

# (iris centre, eye corner on the image's left, corner on the image's right, upper lid, lower lid)
EYES = ((468, 33, 133, 159, 145), (473, 362, 263, 386, 374))
_EYE_IDS = [i for eye in EYES for i in eye]


def head_pose(points: Array, width: int, height: int) -> HeadPose | None:
    """Yaw/pitch/roll of a face from its landmarks in pixels (shape (>=468, 2+))."""
    return PoseSolver().solve(points, width, height)


class PoseSolver:
    """Head pose frame after frame: keeps the camera matrix for the frame size and starts
    solvePnP from the previous frame's pose (converging in a few iterations instead of
    ~10× as many from the frontal guess). Call `reset()` between unrelated images.

    `still_px` > 0: when none of the 9 pose landmarks moved more than that many pixels since
    the frame the pose was last solved on, that pose is returned again without solving (a
    head that still moves the landmarks by at most half a pixel turns by ~1° at most; the
    comparison is with the last *solved* frame, so a slow turn never hides behind it)."""

    def __init__(self, still_px: float = 0.0) -> None:
        self.still_px = still_px
        self._size: tuple[int, int] | None = None
        self._camera = np.eye(3)
        self._guess: tuple[Array, Array] | None = None
        self._solved: tuple[Array, HeadPose | None] | None = None  # points, their pose
        self.solves = 0  # solvePnP runs (a reused pose does not count)

    def reset(self) -> None:
        self._guess = None
        self._solved = None

    def solve(self, points: Array, width: int, height: int) -> HeadPose | None:
        if self._size != (width, height):
            focal = float(max(width, height))
            self._camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]],
                                    np.float64)
            self._size = (width, height)
            self.reset()
        image_pts = np.ascontiguousarray(points[_IDS, :2], dtype=np.float64)
        last = self._solved
        if (last is not None and self.still_px > 0
                and float(np.abs(image_pts - last[0]).max()) <= self.still_px):
            return last[1]
        self.solves += 1
        found = self._pnp(image_pts, self._guess) if self._guess is not None else None
        if found is None:
            found = self._pnp(image_pts, None)
        self._guess = found
        pose = None if found is None else _angles(*found)
        self._solved = (image_pts, pose) if pose is not None else None
        return pose

    def _pnp(self, image_pts: Array, guess: tuple[Array, Array] | None
             ) -> tuple[Array, Array] | None:
        rvec, tvec = (_RVEC0, _TVEC0) if guess is None else guess
        ok, rvec, tvec = cv2.solvePnP(
            _MODEL, image_pts, self._camera, _NO_DISTORTION, rvec=rvec.copy(), tvec=tvec.copy(),
            useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
        )
        if not ok or float(tvec[2, 0]) <= 0:
            return None
        return np.asarray(rvec, np.float64), np.asarray(tvec, np.float64)


def _angles(rvec: Array, tvec: Array) -> HeadPose:
    """Yaw/pitch/roll of the rotation `rvec`, relative to the line of sight to `tvec`. Plain
    float arithmetic: ~20 numbers, for which numpy's per-call cost is most of the time."""
    rx, ry, rz = (float(v) for v in rvec.ravel())
    theta = math.sqrt(rx * rx + ry * ry + rz * rz)
    if theta < 1e-12:
        rot = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    else:  # Rodrigues' formula
        kx, ky, kz = rx / theta, ry / theta, rz / theta
        c, s = math.cos(theta), math.sin(theta)
        v = 1.0 - c
        rot = ((c + kx * kx * v, kx * ky * v - kz * s, kx * kz * v + ky * s),
               (ky * kx * v + kz * s, c + ky * ky * v, ky * kz * v - kx * s),
               (kz * kx * v - ky * s, kz * ky * v + kx * s, c + kz * kz * v))
    tx, ty, tz = (float(v) for v in tvec.ravel())
    norm = math.sqrt(tx * tx + ty * ty + tz * tz)
    onto = _rotation_onto_z(tx / norm, ty / norm, tz / norm)

    def m(i: int, j: int) -> float:  # (onto @ rot)[i][j]
        return onto[i][0] * rot[0][j] + onto[i][1] * rot[1][j] + onto[i][2] * rot[2][j]

    u0, u1 = m(0, 1), m(1, 1)  # columns: y (up) and z (forward)
    f0, f1, f2 = m(0, 2), m(1, 2), m(2, 2)
    yaw = math.degrees(math.atan2(f0, -f2))
    pitch = math.degrees(math.atan2(-f1, math.hypot(f0, f2)))
    roll = math.degrees(math.atan2(u0, -u1))
    return HeadPose(yaw=round(yaw, 2), pitch=round(pitch, 2), roll=round(roll, 2))


def _rotation_onto_z(x: float, y: float, c: float) -> tuple[tuple[float, ...], ...]:
    """The rotation taking unit vector (x, y, c) onto +z (so angles are relative to the line
    of sight): I + K + K²/(1 + c), K the cross-product matrix of the axis (y, -x, 0)."""
    if c <= -0.999999:
        return ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
    q = 1.0 / (1.0 + c)
    return ((1.0 - x * x * q, -x * y * q, -x),
            (-x * y * q, 1.0 - y * y * q, -y),
            (x, y, 1.0 - (x * x + y * y) * q))


def gaze_from_landmarks(points: Array, closed_ratio: float, center_band: float = 0.1) -> Gaze:
    """Iris position inside both eyes (refined landmarks 468–477 required)."""
    hs: list[float] = []
    vs: list[float] = []
    openness: list[float] = []
    xy = points[_EYE_IDS, :2].tolist()  # one copy to Python floats: ~20 values, math is faster
    for k in range(0, len(_EYE_IDS), 5):
        (ix, iy), (lx, ly), (rx, ry), (tx, ty), (bx, by) = xy[k : k + 5]
        width = math.hypot(rx - lx, ry - ly)
        gap = math.hypot(bx - tx, by - ty)
        if width <= 1e-6:
            continue
        openness.append(gap / width)
        hs.append((ix - lx) / (rx - lx))
        if gap > 1e-6:
            vs.append((iy - ty) / (by - ty))
    h = sum(hs) / len(hs) if hs else 0.5
    v = sum(vs) / len(vs) if vs else 0.5
    eyes_open = bool(openness) and sum(openness) / len(openness) >= closed_ratio
    return Gaze(
        horizontal=round(h, 4), vertical=round(v, 4),
        direction=direction_of(h - 0.5, v - 0.5, center_band, 2.5 * center_band),
        eyes_open=eyes_open,
    )


def direction_of(dh: float, dv: float, h_limit: float, v_limit: float) -> str:
    """"left"/"right"/"up"/"down"/"center" for an iris offset from the centre."""
    if abs(dh) > h_limit and abs(dh) / h_limit >= abs(dv) / v_limit:
        return "left" if dh < 0 else "right"
    if abs(dv) > v_limit:
        return "up" if dv < 0 else "down"
    return "center"
