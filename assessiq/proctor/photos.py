"""Real photos available offline: scikit-image's and matplotlib's bundled sample data.

They feed the synthetic camera and the tests. Both libraries are optional at run time; a
missing one raises SampleDataError with what to install.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .errors import SampleDataError

__all__ = ["FACE_PHOTOS", "NON_FACE_PHOTOS", "lfw_faces", "lfw_non_faces", "photo"]

Image = npt.NDArray[np.uint8]

FACE_PHOTOS = ("astronaut", "grace_hopper")
NON_FACE_PHOTOS = ("coffee", "rocket", "chelsea")


def _skimage_data() -> Any:
    try:
        import skimage.data
    except ImportError as exc:
        raise SampleDataError(
            "the sample photos need scikit-image: pip install scikit-image"
        ) from exc
    return skimage.data


@functools.lru_cache(maxsize=16)
def _photo(name: str) -> Image:
    if name == "grace_hopper":
        try:
            from matplotlib import cbook
        except ImportError as exc:
            raise SampleDataError("grace_hopper needs matplotlib: pip install matplotlib") from exc
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        data = np.fromfile(str(path), dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if img is None:
            raise SampleDataError("matplotlib's grace_hopper.jpg could not be decoded")
        return np.asarray(img, dtype=np.uint8)
    if name in ("astronaut", *NON_FACE_PHOTOS):
        rgb = getattr(_skimage_data(), name)()
        return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)
    raise SampleDataError(
        f"unknown photo {name!r}; known: {', '.join(FACE_PHOTOS + NON_FACE_PHOTOS)}"
    )


def photo(name: str) -> Image:
    """A sample photo as a BGR image (a fresh copy)."""
    return _photo(name).copy()


@functools.lru_cache(maxsize=1)
def _lfw() -> npt.NDArray[np.float64]:
    return np.asarray(_skimage_data().lfw_subset(), dtype=np.float64)


def lfw_faces(n: int = 100) -> list[Image]:
    """The first `n` face images of scikit-image's `lfw_subset` (25×25 grey crops; the set
    holds 100 faces then 100 non-faces) as BGR, at their own size: the analyser enlarges
    tiny photos itself (`AnalyzerConfig.min_still_side`)."""
    if not 0 < n <= 100:
        raise ValueError("lfw_subset holds 100 faces")
    return [_grey_to_bgr(img) for img in _lfw()[:n]]


def lfw_non_faces(n: int = 100) -> list[Image]:
    """The non-face half of `lfw_subset`, as `lfw_faces` gives the faces."""
    if not 0 < n <= 100:
        raise ValueError("lfw_subset holds 100 non-faces")
    return [_grey_to_bgr(img) for img in _lfw()[100 : 100 + n]]


def _grey_to_bgr(grey: npt.NDArray[np.float64]) -> Image:
    return np.asarray(cv2.cvtColor((grey * 255).round().astype(np.uint8), cv2.COLOR_GRAY2BGR),
                      dtype=np.uint8)
