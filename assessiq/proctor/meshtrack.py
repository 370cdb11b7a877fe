"""FaceMesh (refined) for a video of one face, with a lean graph for the frames it tracks.

The legacy FaceMesh graph runs ~40 calculators per frame (face detection gated off, loops
over faces, switch containers); while it tracks a face only ~12 of them do work, yet the
scheduling of the rest costs ~0.5 ms a frame, a sixth of the model itself. `MeshTracker`
splits the graph where MediaPipe's own logic splits it:

- **acquiring** (no face followed): the bundled graph with `use_prev_landmarks` off — face
  detection, then landmarks on the best face, exactly what the video graph does on a frame
  where it follows nothing;
- **tracking**: the graph's own landmark subgraph and landmarks→ROI nodes, copied from the
  expanded bundled graph (same calculators, options and model), fed the ROI that the
  previous frame's landmarks gave, exactly what the video graph's loopback feeds them.

A frame whose landmarks fall under the tracking confidence yields no face, and the next
frame is acquired again: the video graph's rule too. The landmarks are the same numbers the
video graph gives (tested frame by frame). Only mediapipe 0.10.21's bundled models are used;
if its graph layout is not the one expected, the tracker falls back to the whole video graph.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .mpgraph import LeanSolution

__all__ = ["MeshTracker"]

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"
_DETECTION_SCORE = ("facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh")
_TICK = 33333
_ATTENTION = "facelandmarkcpu__switchcontainer_2__tensorstofacelandmarkswithattention__"
_OUTPUTS = ("face_landmarks", "face_rect_from_landmarks", "presence")


class MeshTracker:
    """Refined FaceMesh landmarks of at most one face per frame of a video.

    `run(rgb)` returns the serialized NormalizedLandmarkList of the face (478 points), or
    nothing. Not thread-safe. `lean` tells whether the split graphs are in use.
    """

    def __init__(self, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        from mediapipe.python import solution_base

        params = {_THRESHOLD: min_tracking_confidence, _DETECTION_SCORE: min_detection_confidence}
        self._roi: Any = None  # the packet holding the ROI for the next frame
        self._t = 0
        self._track: Any = None
        self._outputs: dict[str, Any] = {}
        self.lean = False
        try:
            self._track = self._tracking_graph()
            self._threshold = min_tracking_confidence
            self.lean = True
        except (ValueError, KeyError, RuntimeError, AttributeError, ImportError) as exc:
            log.info("cannot split FaceMesh's graph (%s): using it whole", exc)
        # acquiring: detection on every call (lean), or the whole video graph (fallback)
        for _ in range(2):
            self._acquire_solution = solution_base.SolutionBase(
                binary_graph_path=_GRAPH,
                side_inputs={"num_faces": 1, "with_attention": True,
                             "use_prev_landmarks": not self.lean},
                calculator_params=params,
                outputs=["multi_face_landmarks", "face_rects_from_landmarks"],
            )
            self._acquire = LeanSolution(self._acquire_solution, "image", "multi_face_landmarks")
            if self._acquire.lean or not self.lean:
                break
            self.lean = False  # graph calls through `process` only: the whole video graph
            self._acquire_solution.close()
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter, image_frame

        self._rect = rect_pb2.NormalizedRect
        self._create_proto = packet_creator.create_proto
        self._create_image = packet_creator.create_image_frame
        self._srgb = image_frame.ImageFormat.SRGB
        self._serialized = _packet_getter._get_serialized_proto
        self._get_float = _packet_getter.get_float
        self._closed = False

    def _tracking_graph(self) -> Any:
        import mediapipe as mp
        from mediapipe.python import packet_creator

        config = _tracking_config()
        graph = mp.CalculatorGraph(graph_config=config)

        def keep(stream: str, packet: Any) -> None:
            self._outputs[stream] = packet

        for stream in _OUTPUTS:
            graph.observe_output_stream(stream, keep, True)
        graph.start_run({"with_attention": packet_creator.create_bool(True)})
        return graph

    def reset(self) -> None:
        """Follow nothing: the next frame is acquired afresh."""
        self._roi = None

    def run(self, rgb: Image) -> list[bytes]:
        """`rgb`: a contiguous RGB uint8 frame."""
        if not self.lean:
            return self._acquire.run(rgb)
        if self._roi is None:
            found = self._acquire.run(rgb)
            rects = self._acquire.outputs("face_rects_from_landmarks")
            if found and rects:
                rect = self._rect.FromString(rects[0])
                self._roi = self._create_proto(rect)
            return found
        self._t += _TICK
        self._outputs.clear()
        image = self._create_image(data=rgb, image_format=self._srgb).at(self._t)
        self._track.add_packet_to_input_stream(stream="image", packet=image)
        self._track.add_packet_to_input_stream(stream="face_rect", packet=self._roi.at(self._t))
        self._track.wait_until_idle()
        landmarks = self._outputs.get("face_landmarks")
        rect = self._outputs.get("face_rect_from_landmarks")
        score = self._outputs.get("presence")
        if (landmarks is None or rect is None or score is None
                or not self._get_float(score) > self._threshold):  # the graph's own rule
            self._roi = None  # the face is lost: acquire it again on the next frame
            return []
        self._roi = rect
        return [self._serialized(landmarks)]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._acquire_solution.close()
            if self._track is not None:
                self._track.close()


def _tracking_config() -> Any:
    """The tracking graph: FaceMesh's own landmark nodes for one face and its ROI, taken from
    the expanded bundled graph with the switch containers (attention model chosen), the loop
    and the presence gate left out (the presence score is read and compared here)."""
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
    config.output_stream.extend(_OUTPUTS)
    config.input_side_packet.append("with_attention")

    def add(node: Any, streams: dict[str, str]) -> None:
        new = config.node.add()
        new.CopyFrom(node)
        for field in (new.input_stream, new.output_stream):
            for i, s in enumerate(field):
                tag, colon, name = s.rpartition(":")
                field[i] = tag + colon + streams.get(name, name)

    size = config.node.add()
    size.calculator = "ImagePropertiesCalculator"
    size.input_stream.append("IMAGE:image")
    size.output_stream.append("SIZE:image_size")
    loop = {"landmarks_loop_image": "image", "landmarks_loop_image_size": "image_size"}
    for name, node in by_name.items():
        if name.startswith(("facelandmarkcpu__facelandmarksmodelloader__",
                            "facelandmarkcpu__TfLiteCustomOpResolverCalculator",
                            "facelandmarkcpu__ImageToTensorCalculator",
                            "facelandmarkcpu__inferencecalculator__",
                            "facelandmarklandmarkstoroi__")):
            add(node, loop)
    # one split of the model's 7 output tensors: 6 landmark sets (the attention branch's
    # order) and the face flag
    split = by_name[_ATTENTION + "SplitTensorVectorCalculator"]
    parts = [s.rpartition(":")[2] for s in split.output_stream]
    flag = "facelandmarkcpu__face_flag_tensor"
    new_split = config.node.add()
    new_split.calculator = "SplitTensorVectorCalculator"
    new_split.input_stream.append("facelandmarkcpu__output_tensors")
    new_split.output_stream.extend([*parts, flag])
    options = calculator_pb2.CalculatorGraphConfig.Node()
    options.CopyFrom(split)
    ranges = _split_options(options)
    del ranges[:]
    for i in range(len(parts) + 1):
        r = ranges.add()
        r.begin, r.end = i, i + 1
    new_split.options.CopyFrom(options.options)
    add(by_name["facelandmarkcpu__TensorsToFloatsCalculator"],
        {"facelandmarkcpu__face_presence_score": "presence"})
    refined = ""
    for name, node in by_name.items():
        if name.startswith(_ATTENTION + "TensorsToLandmarksCalculator"):
            add(node, {})
        elif name.startswith(_ATTENTION + "LandmarksRefinementCalculator"):
            refined = node.output_stream[0].rpartition(":")[2]
            add(node, {})
    add(by_name["facelandmarkcpu__LandmarkProjectionCalculator"],
        {"facelandmarkcpu__landmarks": refined})
    outs = {s.rpartition(":")[2] for n in config.node for s in n.output_stream}
    if not refined or not set(_OUTPUTS) <= outs | {"face_rect_from_landmarks"}:
        raise ValueError("unexpected FaceMesh graph layout")
    return config


def _split_options(node: Any) -> Any:
    from mediapipe.calculators.core import split_vector_calculator_pb2

    return node.options.Extensions[split_vector_calculator_pb2.SplitVectorCalculatorOptions.ext
                                   ].ranges
