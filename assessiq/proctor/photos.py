"""Real photos available offline: the synthetic camera's two portraits, and the tests' extras.

The two face photos the synthetic camera composes its scenes from (`FACE_PHOTOS`) ship inside
the package (`sample_photos/`, sources and licences in its SOURCES.md), so a candidate's or a
demo's install needs no scikit-image or scipy. The non-face photos and `lfw_subset` are only
the tests' and come from scikit-image (the `dev` extra); without it they raise
SampleDataError with what to install.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .errors import SampleDataError

__all__ = ["FACE_PHOTOS", "NON_FACE_PHOTOS", "lfw_faces", "lfw_non_faces", "photo"]

Image = npt.NDArray[np.uint8]

FACE_PHOTOS = ("astronaut", "grace_hopper")
NON_FACE_PHOTOS = ("coffee", "rocket", "chelsea")
_FILES = {"astronaut": "astronaut.png", "grace_hopper": "grace_hopper.jpg"}


def _skimage_data() -> Any:
    try:
        import skimage.data
    except ImportError as exc:
        raise SampleDataError(
            "the tests' extra sample photos need scikit-image: pip install scikit-image"
        ) from exc
    return skimage.data


@functools.lru_cache(maxsize=16)
def _photo(name: str) -> Image:
    if name in _FILES:
        data = resources.files(__package__).joinpath("sample_photos", _FILES[name]).read_bytes()
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise SampleDataError(f"the bundled photo {_FILES[name]} could not be decoded")
        return np.asarray(img, dtype=np.uint8)
    if name in NON_FACE_PHOTOS:
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
