"""Per-frame analysis on real photos (scikit-image, matplotlib samples) and transforms of them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("skimage", reason="the sample photos come from scikit-image")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.proctor.analyzer import FrameAnalyzer, enlarge
from assessiq.proctor.config import AnalyzerConfig
from assessiq.proctor.facewarp import face_landmarks, shift_irises, turn_head
from assessiq.proctor.photos import lfw_faces, lfw_non_faces, photo
from assessiq.proctor.synthetic import Scene, SyntheticCamera

FACES = ("astronaut", "grace_hopper")


@pytest.fixture(scope="module")
def still():
    with FrameAnalyzer(still_images=True) as analyzer:
        yield analyzer


@pytest.fixture(scope="module")
def landmarks():
    return {name: face_landmarks(photo(name)) for name in FACES}


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


TRANSFORMS = {
    "as is": lambda im: im,
    "flipped": lambda im: cv2.flip(im, 1),
    "rotated 20": lambda im: rotate(im, 20),
    "rotated -45": lambda im: rotate(im, -45),
    "dark": lambda im: cv2.convertScaleAbs(im, alpha=0.25),
    "blurred": lambda im: cv2.GaussianBlur(im, (9, 9), 3),
    "noisy": lambda im: np.clip(im + np.random.default_rng(1).normal(0, 20, im.shape), 0, 255
                                ).astype(np.uint8),
}


@pytest.mark.parametrize("name", FACES)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_face_found_in_photos_and_transforms(still, name, transform):
    f = still.analyse(TRANSFORMS[transform](photo(name)))
    assert f.faces == 1, f.labels()
    assert f.pose is not None and f.gaze is not None


def test_faces_found_in_lfw_subset(still):
    """Each of the 100 face crops of lfw_subset (25×25 px, given as they are: the analyser
    enlarges tiny photos itself) holds one face, and none of its 100 non-face crops does."""
    faces = lfw_faces(100)
    assert {img.shape for img in faces} == {(25, 25, 3)}
    found = [still.analyse(img).faces for img in faces]
    missed = [i for i, n in enumerate(found) if n == 0]
    assert missed == [], f"missed lfw faces {missed}"
    assert all(n == 1 for n in found)
    false = [i for i, img in enumerate(lfw_non_faces(100)) if still.analyse(img).faces]
    assert false == []


def test_tiny_photos_are_enlarged_with_a_border():
    img = lfw_faces(1)[0]
    big = enlarge(img, 160)
    assert big.shape == (160 + 2 * 96, 160 + 2 * 96, 3)
    assert (big[:96, :96] == img[0, 0]).all()  # the border repeats the corner pixel
    assert (big[96:-96, :96] == big[96:-96, 96:97]).all()  # ... and the edge columns
    centre = cv2.resize(big[96:-96, 96:-96], (25, 25), interpolation=cv2.INTER_AREA)
    assert np.abs(centre.astype(int) - img.astype(int)).mean() < 8  # the photo, scaled up


def _blanks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "black": np.zeros((480, 640, 3), np.uint8),
        "white": np.full((480, 640, 3), 255, np.uint8),
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "smooth noise": cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
                                         (15, 15), 5),
    }


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea", *_blanks()])
def test_no_face_in_non_face_images(still, name):
    img = _blanks()[name] if name in _blanks() else photo(name)
    f = still.analyse(img)
    assert f.faces == 0 and f.pose is None and f.gaze is None


def _side_by_side() -> np.ndarray:
    a, b = photo("astronaut"), photo("grace_hopper")
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
    return np.hstack([a, b])


def test_two_faces_in_a_side_by_side_composite(still):
    assert still.analyse(_side_by_side()).faces == 2


def test_two_faces_in_video_mode_too():
    """Video mode tracks one face with the mesh; full-range detection counts the second."""
    with FrameAnalyzer(AnalyzerConfig(detect_interval=0.0, stable_interval=0.0)) as video:
        composite = cv2.resize(_side_by_side(), (640, 328))
        counts = [video.analyse(composite, t=i / 10).faces for i in range(3)]
    assert counts[-1] == 2


@pytest.mark.parametrize("name", FACES)
def test_turned_left_and_right_give_yaw_of_opposite_signs(still, landmarks, name):
    img, pts = photo(name), landmarks[name]
    left = still.analyse(turn_head(img, pts, -50)).pose
    right = still.analyse(turn_head(img, pts, 50)).pose
    front = still.analyse(img).pose
    assert left is not None and right is not None and front is not None
    assert left.yaw < -20 < 20 < right.yaw
    assert abs(front.yaw) < 10


@pytest.mark.parametrize("name", FACES)
def test_yaw_sign_means_the_nose_points_to_that_side_of_the_image(still, landmarks, name):
    """The sign convention, checked against geometry rather than our own warp: after turning,
    the nose tip sits to the image-right of the midpoint between the eye corners exactly when
    yaw > 0; and mirroring the image mirrors the yaw."""
    img, pts = photo(name), landmarks[name]
    for degrees in (-50, 50):
        turned = turn_head(img, pts, degrees)
        lm = face_landmarks(turned)
        nose_offset = lm[1, 0] - (lm[33, 0] + lm[263, 0]) / 2
        yaw = still.analyse(turned).pose.yaw
        assert np.sign(nose_offset) == np.sign(yaw) == np.sign(degrees)
        mirrored = still.analyse(cv2.flip(turned, 1)).pose.yaw
        assert np.sign(mirrored) == -np.sign(yaw)
        assert abs(mirrored + yaw) < 10


def test_gaze_follows_the_irises(still, landmarks):
    img, pts = photo("astronaut"), landmarks["astronaut"]
    centre = still.analyse(img).gaze
    left = still.analyse(shift_irises(img, pts, -0.35)).gaze
    right = still.analyse(shift_irises(img, pts, 0.35)).gaze
    assert centre.direction == "center"
    assert left.direction == "left" and right.direction == "right"
    assert left.horizontal < centre.horizontal - 0.12 < centre.horizontal + 0.12 < right.horizontal


def test_covered_and_dark_frames_are_recognised(still):
    cam = SyntheticCamera([(1, Scene.PRESENT)])
    covered = still.analyse(cam.render(Scene.COVERED, 0))
    assert covered.covered and covered.faces == 0
    dark = still.analyse(cam.render(Scene.DARK, 0))  # lights off: 5 % of the lit scene
    assert dark.dark
    dusk = still.analyse(cv2.convertScaleAbs(cam.render(Scene.PRESENT, 0), alpha=0.25))
    assert dusk.dark and not dusk.covered and dusk.faces == 1  # dark, yet the face is visible
    black = still.analyse(np.random.default_rng(3).integers(0, 6, (480, 640, 3), dtype=np.uint8))
    assert black.covered and black.dark
    lit = still.analyse(cam.render(Scene.PRESENT, 0))
    assert not lit.dark and not lit.covered and lit.faces == 1
    dim = still.analyse(cam.render(Scene.DIM, 0))
    assert not dim.dark and not dim.covered and dim.faces == 1


def test_bad_input_is_refused(still):
    with pytest.raises(ValueError):
        still.analyse(np.zeros((10, 10), np.uint8))


def _distant(img: np.ndarray, scale: float, canvas: np.ndarray | None = None,
             x: int = 320) -> np.ndarray:
    canvas = np.full((480, 640, 3), 150, np.uint8) if canvas is None else canvas.copy()
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    canvas[480 - h :, x - w // 2 : x - w // 2 + w] = small
    return canvas


@pytest.mark.parametrize("scale", [0.25, 0.2, 0.15])
def test_full_range_detection_counts_faces_too_small_for_the_mesh(still, scale):
    """Grace Hopper at 30–50 px: the mesh no longer finds her, the full-range detector does."""
    f = still.analyse(_distant(photo("grace_hopper"), scale))
    assert f.faces == 1 and [b.source for b in f.boxes] == ["detection"]
    assert f.pose is None  # no landmarks, so no pose or gaze for such a face


def test_a_distant_second_person_is_counted_in_video_mode():
    cam = SyntheticCamera([(1, Scene.PRESENT)])
    # a ~60 px face behind the candidate: the mesh follows only the candidate
    scene = _distant(photo("grace_hopper"), 0.3, cam.render(Scene.PRESENT, 0), x=540)
    with FrameAnalyzer(AnalyzerConfig(detect_interval=0.0, stable_interval=0.0)) as video:
        counts = [video.analyse(scene, t=i / 10).faces for i in range(3)]
    assert counts[-1] == 2
