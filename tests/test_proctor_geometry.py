"""The pose angles' plain-float arithmetic equals the matrix form (cv2.Rodrigues, numpy)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from assessiq.proctor.geometry import _angles


def _angles_by_matrices(rvec: npt.NDArray[np.float64], tvec: npt.NDArray[np.float64]
                        ) -> tuple[float, float, float]:
    rot, _ = cv2.Rodrigues(rvec)
    v = tvec.ravel() / np.linalg.norm(tvec)
    k = np.array([[0.0, 0.0, -v[0]], [0.0, 0.0, -v[1]], [v[0], v[1], 0.0]])
    m = (np.eye(3) + k + k @ k / (1.0 + v[2])) @ rot
    f0, f1, f2 = m[:, 2]
    u0, u1 = m[0, 1], m[1, 1]
    return (math.degrees(math.atan2(f0, -f2)), math.degrees(math.atan2(-f1, math.hypot(f0, f2))),
            math.degrees(math.atan2(u0, -u1)))


def test_angles_match_the_matrix_form() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        rvec = rng.normal(0.0, 1.5, (3, 1))
        tvec = np.array([[rng.normal(0, 10)], [rng.normal(0, 10)], [abs(rng.normal(60, 20)) + 1]])
        got = _angles(rvec, tvec)
        yaw, pitch, roll = _angles_by_matrices(rvec, tvec)
        for a, b in ((got.yaw, yaw), (got.pitch, pitch), (got.roll, roll)):
            d = abs(a - b) % 360.0
            assert min(d, 360.0 - d) <= 0.0051  # equal to the 0.01° the pose is rounded to
    frontal = _angles(np.array([[math.pi], [0.0], [0.0]]), np.array([[0.0], [0.0], [60.0]]))
    assert (frontal.yaw, frontal.pitch, frontal.roll) == (0.0, 0.0, 0.0)
