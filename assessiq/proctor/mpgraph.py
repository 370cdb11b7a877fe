"""A lean call into a MediaPipe legacy solution: landmarks as numpy arrays, no proto objects.

`SolutionBase.process` builds a new namedtuple class on every call and turns every landmark
list into protobuf objects, which the caller then reads point by point in Python: ~0.3–0.6 ms
per FaceMesh frame, a tenth of the mesh itself. `LeanSolution` feeds the same graph the same
image packet at the same simulated timestamps and takes the output stream's *serialized*
protos; `landmarks_from_bytes` reads them with one numpy view. It uses SolutionBase's
internals in mediapipe 0.10.21 (checked once, when created); with any other layout it falls
back to the public `process`, which gives the same numbers, only slower.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TICK", "LeanSolution", "landmarks_from_bytes"]

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

TICK = 33333  # SolutionBase's simulated timestamp step (µs), kept so both paths agree

# NormalizedLandmark {float x = 1; float y = 2; float z = 3; ...} inside a repeated field 1:
# each point is 17 bytes: 0x0a, length 15, then 0x0d x, 0x15 y, 0x1d z (fixed32, little-endian).
# FaceMesh never sets visibility/presence; proto3 leaves out a coordinate that is exactly 0.0,
# so any other layout is parsed the slow way.
_SIZE = 17
_TAGS = ((0, 0x0A), (1, 15), (2, 0x0D), (7, 0x15), (12, 0x1D))  # (offset in a point, byte)


def landmarks_from_bytes(blob: bytes) -> npt.NDArray[np.float64]:
    """A serialized NormalizedLandmarkList → array (3, n): rows of normalized x, y and z, each
    contiguous (`.T` gives points as rows)."""
    n = len(blob) // _SIZE
    if n and len(blob) == n * _SIZE and all(
            blob[at::_SIZE] == bytes((byte,)) * n for at, byte in _TAGS):
        rows: npt.NDArray[np.float32] = np.ndarray((3, n), "<f4", blob, offset=3,
                                                   strides=(5, _SIZE))
        return rows.astype(np.float64)
    from mediapipe.framework.formats import landmark_pb2

    lm = landmark_pb2.NormalizedLandmarkList.FromString(blob).landmark
    return np.array([[p.x for p in lm], [p.y for p in lm], [p.z for p in lm]], np.float64)


class LeanSolution:
    """Runs one image through a legacy solution's graph (one whose `process` takes the image,
    as FaceMesh and FaceDetection do); returns one output stream's serialized protos (an empty
    list when the graph produced none)."""

    def __init__(self, solution: Any, input_stream: str, output_stream: str) -> None:
        self.solution = solution
        self.input_stream = input_stream
        self.output_stream = output_stream
        self.lean = False
        try:
            from mediapipe.python import packet_creator
            from mediapipe.python._framework_bindings import _packet_getter, image_frame

            self._create = packet_creator.create_image_frame
            self._srgb = image_frame.ImageFormat.SRGB
            self._serialized = _packet_getter._get_serialized_proto_list
            self.lean = (isinstance(getattr(solution, "_graph_outputs", None), dict)
                         and isinstance(getattr(solution, "_simulated_timestamp", None), int)
                         and hasattr(getattr(solution, "_graph", None),
                                     "add_packet_to_input_stream"))
        except (ImportError, AttributeError) as exc:
            log.info("mediapipe internals differ (%s): using SolutionBase.process", exc)
        if not self.lean:
            log.info("lean graph calls unavailable: using SolutionBase.process")

    def run(self, rgb: Image) -> list[bytes]:
        """`rgb`: a contiguous RGB uint8 image."""
        s = self.solution
        if not self.lean:
            found = getattr(s.process(rgb), self.output_stream) or []
            return [m.SerializeToString() for m in found]
        s._graph_outputs.clear()
        s._simulated_timestamp += TICK
        packet = self._create(data=rgb, image_format=self._srgb).at(s._simulated_timestamp)
        s._graph.add_packet_to_input_stream(stream=self.input_stream, packet=packet)
        s._graph.wait_until_idle()
        return self.outputs(self.output_stream)

    def outputs(self, stream: str) -> list[bytes]:
        """Another observed output stream's serialized protos from the last `run` (lean
        calls only)."""
        out = self.solution._graph_outputs.get(stream)
        return [] if out is None or out.is_empty() else list(self._serialized(out))
