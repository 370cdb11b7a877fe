"""The pixel stamp: written, read back, through a real VP8 encode/decode, damage rejected."""

from __future__ import annotations

import fractions

import numpy as np
from aiortc.codecs import get_decoder, get_encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from assessiq.media.stamp import STRIP_HEIGHT, read_stamp, stamp_bgr, stamp_luma
from assessiq.media.synthetic import SyntheticVideoTrack

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def test_roundtrip_bgr_and_luma():
    img = np.full((480, 640, 3), 100, dtype=np.uint8)
    stamp_bgr(img, counter=123456, t_ms=1_700_000_000_123)
    s = read_stamp(img)
    assert s is not None and (s.counter, s.t_ms) == (123456, 1_700_000_000_123)
    luma = np.zeros((480, 640), dtype=np.uint8)
    stamp_luma(luma, counter=(1 << 24) + 5, t_ms=42)  # the counter wraps at 24 bits
    s = read_stamp(luma)
    assert s is not None and (s.counter, s.t_ms) == (5, 42)


def test_unstamped_or_damaged_frames_read_as_none():
    for level in (0, 16, 128, 255):  # grey, black (camera off), white: no stamp
        assert read_stamp(np.full((480, 640), level, dtype=np.uint8)) is None
    rng = np.random.default_rng(1)
    assert read_stamp(rng.integers(0, 256, (480, 640), dtype=np.uint8)) is None
    luma = np.zeros((480, 640), dtype=np.uint8)
    stamp_luma(luma, counter=77, t_ms=99)
    luma[4:12, 16 * 30 + 4 : 16 * 30 + 12] = 255 - luma[8, 16 * 30 + 8]  # flip one bit
    assert read_stamp(luma) is None
    assert read_stamp(np.zeros((STRIP_HEIGHT, 100), dtype=np.uint8)) is None


def test_stamp_survives_vp8_at_the_lowest_bitrate():
    encoder, decoder = get_encoder(VP8), get_decoder(VP8)
    encoder.target_bitrate = 250_000  # aiortc's floor
    rng = np.random.default_rng(0)
    read = 0
    for n in range(30):
        img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # the worst picture
        stamp_bgr(img, counter=n, t_ms=1_000_000 + n)
        frame = VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = n * 3000, fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=n == 0)
        data = b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)
        for out in decoder.decode(JitterFrame(data=data, timestamp=n * 3000)):
            s = read_stamp(out.to_ndarray(format="bgr24"))
            assert s is not None, f"stamp of frame {n} unreadable after VP8"
            assert (s.counter, s.t_ms) == (n, 1_000_000 + n)
            read += 1
    assert read == 30


async def test_synthetic_track_stamps_consecutive_counters():
    track = SyntheticVideoTrack(fps=30)
    counters = []
    for _ in range(5):
        frame = await track.recv()
        assert (frame.width, frame.height) == (640, 480)
        s = read_stamp(frame.to_ndarray(format="yuv420p")[:480])
        assert s is not None
        counters.append(s.counter)
    assert counters == [0, 1, 2, 3, 4]
    track.stop()


def test_stamp_reads_from_a_frame_the_sender_scaled_down():
    import cv2

    img = np.full((480, 640, 3), 90, dtype=np.uint8)
    stamp_bgr(img, counter=4321, t_ms=1_700_000_000_777)
    for width, height in ((480, 360), (320, 240), (160, 120)):
        small = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
        assert ok
        s = read_stamp(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
        assert s is not None and (s.counter, s.t_ms) == (4321, 1_700_000_000_777), width
    assert read_stamp(cv2.resize(img, (64, 48))) is None  # too small to read: no guess
