"""Proctoring on the candidate's machine: frames → findings → debounced integrity events.

Imports nothing of the app beyond `assessiq.core.kinds`; mediapipe loads on first use.
"""

from .analyzer import FrameAnalyzer
from .calibration import Baseline, Calibration
from .config import AnalyzerConfig, Hysteresis, ProctorConfig
from .detectors import CONDITION_KINDS, DetectorBank, EventSink
from .errors import FrameSourceError, NoCameraError, ProctorError, SampleDataError
from .findings import FaceBox, FrameFindings, Gaze, HeadPose
from .frames import CameraSource, Frame, ImageSequenceSource, VideoFileSource, read_image
from .meter import ProctorStats
from .pipeline import analyse_stream
from .rate import RateController
from .runner import Analyzer, Proctor
from .synthetic import Plant, Scene, SyntheticCamera, parse_timeline

__all__ = [
    "CONDITION_KINDS",
    "Analyzer",
    "AnalyzerConfig",
    "Baseline",
    "Calibration",
    "CameraSource",
    "DetectorBank",
    "EventSink",
    "FaceBox",
    "Frame",
    "FrameAnalyzer",
    "FrameFindings",
    "FrameSourceError",
    "Gaze",
    "HeadPose",
    "Hysteresis",
    "ImageSequenceSource",
    "NoCameraError",
    "Plant",
    "Proctor",
    "ProctorConfig",
    "ProctorError",
    "ProctorStats",
    "RateController",
    "SampleDataError",
    "Scene",
    "SyntheticCamera",
    "VideoFileSource",
    "analyse_stream",
    "parse_timeline",
    "read_image",
]
