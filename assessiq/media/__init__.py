"""The call's media: capture, synthetic sources, tracks each way, the proctor's tap, frames
as JPEG for the UI, and call statistics."""

from .config import AUTO, SYNTHETIC, MediaConfig
from .devices import Device, list_cameras, list_microphones, open_camera, open_microphone
from .errors import DeviceBusyError, DeviceError, MediaError, NoDeviceError, PlaybackError
from .playback import AudioPlayer, list_speakers
from .render import JpegSlot, frame_to_jpeg
from .session import MediaSession, attach_media
from .sinks import RemoteAudioSink, RemoteVideoSink, dominant_frequency
from .stamp import Stamp, read_stamp
from .synthetic import SyntheticVideoTrack, ToneAudioTrack
from .tap import FrameTap

__all__ = [
    "AUTO",
    "SYNTHETIC",
    "AudioPlayer",
    "Device",
    "DeviceBusyError",
    "DeviceError",
    "FrameTap",
    "JpegSlot",
    "MediaConfig",
    "MediaError",
    "MediaSession",
    "NoDeviceError",
    "PlaybackError",
    "RemoteAudioSink",
    "RemoteVideoSink",
    "Stamp",
    "SyntheticVideoTrack",
    "ToneAudioTrack",
    "attach_media",
    "dominant_frequency",
    "frame_to_jpeg",
    "list_cameras",
    "list_microphones",
    "list_speakers",
    "open_camera",
    "open_microphone",
    "read_stamp",
]
