"""FaceMesh (refined) for a video of one face, with a lean graph for the frames it tracks.

The legacy FaceMesh graph schedules ~40 calculators a frame (face detection gated off, loops
over faces, switch containers, seven tensor→landmark nodes, refinement, projection, the
landmarks→ROI nodes); their scheduling and the landmark protos cost ~0.3–0.6 ms a frame on
top of the model's ~2.8 ms. `MeshTracker` splits the graph where MediaPipe's own logic does:

- **acquiring** (no face followed): the bundled graph with `use_prev_landmarks` off — face
  detection, then landmarks on the best face: what the video graph does on a frame where it
  follows nothing;
- **tracking**: the graph's own ROI crop (ImageToTensor) and attention model (Inference),
  copied from the expanded bundled graph with their options, and one node that hands the
  model's seven output tensors over whole (TensorsToEmbeddings); the landmark nodes after it
  are done in numpy by `MeshPost` from those nodes' own options, in float32 like them. The
  next frame's ROI comes from this frame's landmarks, as the video graph's loopback does.

A frame whose face flag is not above the tracking confidence yields no face, and the next
frame is acquired again: the video graph's rule too. Given the whole frame (`crop=False`),
the landmarks are bit for bit the ones the video graph gives (tested frame by frame through
faces lost, found, turned and doubled). By default the crop step is given only the followed
face's region (`follow`): its ROI, renormalized to the region, rounds differently in the last
bits, so a step's landmarks differ by under 0.05 px (tested), and faces are found on the same
frames as the video graph. Only mediapipe 0.10.21's bundled models are used; with a graph
layout other than the one expected, the tracker uses the whole video graph instead.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .meshpost import MeshPost, Rect
from .mpgraph import TICK, LeanSolution, landmarks_from_bytes

__all__ = ["MeshTracker"]

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"
_DETECTION_SCORE = ("facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh")
_ATTENTION = "facelandmarkcpu__switchcontainer_2__tensorstofacelandmarkswithattention__"
Rows = npt.NDArray[np.float64]


class MeshTracker:
    """Refined FaceMesh landmarks of at most one face per frame of a video.

    `run(rgb)` returns the face's landmarks as rows (3, 478), or nothing. Not thread-safe.
    `lean` tells whether the split graphs are in use. `crop` (see `follow`): give the model's
    crop step only the followed face's region; off, it is given the whole frame, as the video
    graph is, and the landmarks are the video graph's bit for bit.
    """

    def __init__(self, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, *, crop: bool = True) -> None:
        self.crop = crop
        params = {_THRESHOLD: min_tracking_confidence, _DETECTION_SCORE: min_detection_confidence}
        self._roi: Rect | None = None  # where to look for the face in the next frame
        self._t = 0
        self._track: Any = None
        self._outputs: dict[str, Any] = {}
        self.acquisitions = 0  # frames that needed face detection (nothing was followed)
        self.lean = False
        try:
            self._track = self._tracking_graph()
            self._threshold = min_tracking_confidence
            self.lean = True
        except (ValueError, KeyError, RuntimeError, AttributeError, ImportError) as exc:
            log.info("cannot split FaceMesh's graph (%s): using it whole", exc)
        self._params = params
        self._acquire_solution, self._acquire = self._bundled(video=not self.lean)
        if self.lean and not self._acquire.lean:  # graph calls through `process` only
            self._use_whole("mediapipe's SolutionBase internals differ")
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter, image_frame

        self._rect = rect_pb2.NormalizedRect
        self._create_proto = packet_creator.create_proto
        self._create_image = packet_creator.create_image_frame
        self._srgb = image_frame.ImageFormat.SRGB
        self._serialized = _packet_getter._get_serialized_proto
        self._closed = False

    def _bundled(self, video: bool) -> tuple[Any, LeanSolution]:
        """The bundled FaceMesh graph for one face: acquiring (detection on every call) or,
        with `video`, the whole video graph."""
        from mediapipe.python import solution_base

        solution = solution_base.SolutionBase(
            binary_graph_path=_GRAPH,
            side_inputs={"num_faces": 1, "with_attention": True, "use_prev_landmarks": video},
            calculator_params=self._params,
            outputs=["multi_face_landmarks", "face_rects_from_landmarks"],
        )
        return solution, LeanSolution(solution, "image", "multi_face_landmarks")

    def _use_whole(self, why: object) -> None:
        log.warning("FaceMesh's lean tracking is off (%s): using the whole video graph", why)
        self.lean = False
        if self._track is not None:
            self._track.close()
            self._track = None
        self._acquire_solution.close()
        self._acquire_solution, self._acquire = self._bundled(video=True)

    def _tracking_graph(self) -> Any:
        import mediapipe as mp
        from mediapipe.python import packet_creator

        config, self._post = _tracking_config()
        graph = mp.CalculatorGraph(graph_config=config)

        outputs = self._outputs  # not `self`: a graph holding its owner is never freed

        def keep(stream: str, packet: Any) -> None:
            outputs[stream] = packet

        graph.observe_output_stream("tensors", keep, True)
        graph.start_run({"with_attention": packet_creator.create_bool(True)})
        return graph

    def reset(self) -> None:
        """Follow nothing: the next frame is acquired afresh."""
        self._roi = None

    def run(self, rgb: Image) -> list[Rows]:
        """`rgb`: a contiguous RGB uint8 frame → the face's landmarks as rows (3, 478) of
        normalized x, y and z (`landmarks_from_bytes`'s layout), or nothing."""
        return self.follow(rgb, lambda: rgb, bgr=False)

    def follow(self, frame: Image, whole_rgb: Callable[[], Image], bgr: bool = True
               ) -> list[Rows]:
        """`run` for a frame in BGR (or RGB, `bgr=False`) that converts only what it needs:
        a followed face's region, cut out and converted here, or `whole_rgb()` (the whole
        frame in RGB) when a face must be found. The region is the bounding box of the
        rotated ROI and 2 px (the crop's bilinear taps), cut at the frame's edges, where the
        crop's replicated border is the frame's. A few hundred KB a frame instead of the whole
        frame twice (our conversion, MediaPipe's copy) leaves the crop's source in the cache."""
        if not self.lean:
            return [landmarks_from_bytes(b) for b in self._acquire.run(whole_rgb())]
        h, w = frame.shape[:2]
        if self._roi is None:
            return self._acquire_in(whole_rgb())
        roi = self._roi
        if self.crop:
            cut = _region(roi, w, h)
            if cut is None:  # the ROI left the frame: nothing to follow
                self._roi = None
                return []
            x0, y0, x1, y1 = cut
            part = frame[y0:y1, x0:x1]
            image_data = (cv2.cvtColor(part, cv2.COLOR_BGR2RGB) if bgr
                          else np.ascontiguousarray(part))
            cw, ch = x1 - x0, y1 - y0
            rect = self._rect(x_center=(roi.x_center * w - x0) / cw,
                              y_center=(roi.y_center * h - y0) / ch, width=roi.width * w / cw,
                              height=roi.height * h / ch, rotation=roi.rotation)
        else:
            image_data = whole_rgb()
            rect = self._rect(x_center=roi.x_center, y_center=roi.y_center, width=roi.width,
                              height=roi.height, rotation=roi.rotation)
        self._t += TICK
        self._outputs.clear()
        image = self._create_image(data=image_data, image_format=self._srgb)
        self._track.add_packet_to_input_stream(stream="image", packet=image.at(self._t))
        self._track.add_packet_to_input_stream(
            stream="face_rect", packet=self._create_proto(rect).at(self._t))
        self._track.wait_until_idle()
        packet = self._outputs.get("tensors")
        blob = self._serialized(packet) if packet is not None else b""
        try:
            rows = self._post.read(blob, roi, self._threshold) if blob else None
            if rows is None:
                self._roi = None  # the face is lost (the graph's own rule): acquire it anew
                return []
        except ValueError as exc:  # tensors not laid out as the model's: never seen
            self._use_whole(exc)
            return self.follow(frame, whole_rgb, bgr)
        self._roi = self._post.roi(rows, w, h)
        return [rows.astype(np.float64)]

    def _acquire_in(self, rgb: Image) -> list[Rows]:
        self.acquisitions += 1
        found = self._acquire.run(rgb)
        rects = self._acquire.outputs("face_rects_from_landmarks")
        if found and rects:
            r = self._rect.FromString(rects[0])
            self._roi = Rect(r.x_center, r.y_center, r.width, r.height, r.rotation)
        return [landmarks_from_bytes(b) for b in found]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._acquire_solution.close()
            if self._track is not None:
                self._track.close()
                self._track = None  # the graph's threads end when it is freed


def _region(roi: Rect, w: int, h: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the pixels the crop step reads for `roi` (its rotated box's bounds
    and 2 px for the bilinear taps) within a w × h frame; None when under 2 × 2."""
    cx, cy, rw, rh = roi.x_center * w, roi.y_center * h, roi.width * w, roi.height * h
    c, s = abs(math.cos(roi.rotation)), abs(math.sin(roi.rotation))
    half_w, half_h = (rw * c + rh * s) / 2 + 2, (rw * s + rh * c) / 2 + 2
    x0, x1 = max(0, math.floor(cx - half_w)), min(w, math.ceil(cx + half_w))
    y0, y1 = max(0, math.floor(cy - half_h)), min(h, math.ceil(cy + half_h))
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def _tracking_config() -> tuple[Any, MeshPost]:
    """The tracking graph: FaceMesh's own ROI crop and attention model for one face, taken
    from the expanded bundled graph, its tensors handed out whole (as float embeddings); the
    landmark nodes after it are replaced by `MeshPost`, built from their options (with which
    tensor feeds each refinement, and which is the face flag)."""
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import solution_base
    from mediapipe.python._framework_bindings import validated_graph_config
    from mediapipe.python.solutions import face_mesh

    if face_mesh._BINARYPB_FILE_PATH != _GRAPH:
        raise ValueError("FaceMesh's graph moved")
    root = os.path.dirname(os.path.dirname(os.path.dirname(solution_base.__file__)))
    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(binary_graph_path=os.path.join(root, _GRAPH))
    full = calculator_pb2.CalculatorGraphConfig()
    full.ParseFromString(validated.binary_config)
    by_name = {n.name: n for n in full.node if n.name}
    config = calculator_pb2.CalculatorGraphConfig()
    config.input_stream.extend(["image", "face_rect"])
    config.output_stream.append("tensors")
    config.input_side_packet.append("with_attention")
    for name, node in by_name.items():
        if name.startswith(("facelandmarkcpu__facelandmarksmodelloader__",
                            "facelandmarkcpu__TfLiteCustomOpResolverCalculator",
                            "facelandmarkcpu__ImageToTensorCalculator",
                            "facelandmarkcpu__inferencecalculator__")):
            new = config.node.add()
            new.CopyFrom(node)
            for i, stream in enumerate(new.input_stream):
                new.input_stream[i] = stream.replace("landmarks_loop_image", "image")
    out = config.node.add()
    out.calculator = "TensorsToEmbeddingsCalculator"
    out.input_stream.append("TENSORS:facelandmarkcpu__output_tensors")
    out.output_stream.append("EMBEDDINGS:tensors")
    # which model output feeds which refinement: the attention branch's split → landmarks
    split = by_name[_ATTENTION + "SplitTensorVectorCalculator"]
    order = [s.rpartition(":")[2] for s in split.output_stream]
    producers = {n.output_stream[0].rpartition(":")[2]: n for n in full.node
                 if n.name.startswith(_ATTENTION + "TensorsToLandmarksCalculator")}
    refinement = by_name[_ATTENTION + "LandmarksRefinementCalculator"]
    ttl, index = [], []
    for stream in refinement.input_stream:
        node = producers[stream.rpartition(":")[2]]
        ttl.append(node.name)
        index.append(order.index(node.input_stream[0].rpartition(":")[2]))
    flag_split = _split_options(by_name["facelandmarkcpu__switchcontainer_1__"
                                        "SplitTensorVectorCalculator_2"])
    flag = flag_split[1].begin
    if [r.begin for r in _split_options(split)] != list(range(len(order))) or flag != len(order):
        raise ValueError("unexpected FaceMesh tensor layout")
    post = MeshPost.from_graph(by_name, ttl, refinement.name,
                               "facelandmarklandmarkstoroi__DetectionsToRectsCalculator",
                               "facelandmarklandmarkstoroi__RectTransformationCalculator",
                               index, flag)
    return config, post


def _split_options(node: Any) -> Any:
    from mediapipe.calculators.core import split_vector_calculator_pb2

    return node.options.Extensions[split_vector_calculator_pb2.SplitVectorCalculatorOptions.ext
                                   ].ranges
