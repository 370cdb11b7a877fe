"""Choosing the microphone (`--microphone`), a missing one, and playback that succeeds.

The machine has no sound card, so the real-device test builds two ALSA "file" devices in a
child process's own ~/.asoundrc: `aiqmic` reads a 523 Hz tone from a raw file (a microphone
picked by name, opened by FFmpeg's ALSA input exactly as a real one), and `aiqsink` writes
whatever PortAudio plays into a raw file (the output device the received audio is played
on). The tone must come out of the speaker at its own pitch.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assessiq.cli import build_parser
from assessiq.media import SYNTHETIC, MediaConfig
from assessiq.media.loopback import connect_pair
from assessiq.media.sinks import dominant_frequency
from assessiq.room.call import describe_problems, plan_call

ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
TONE_HZ = 523.0

ASOUNDRC = """
pcm.aiqmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{mic}"
    format "raw"
}}
pcm.aiqsink {{
    type file
    slave.pcm "null"
    file "{sink}"
    format "raw"
}}
"""


def test_plan_call_takes_the_microphone_choice():
    assert plan_call("host", camera="none", microphone="none").config.microphone is None
    assert plan_call("host", camera="none", microphone="synthetic").config.microphone == SYNTHETIC
    assert plan_call("host", camera="none").config.microphone == "auto"
    assert plan_call("candidate", camera="none", microphone="hw:1,0").config.microphone == "hw:1,0"


@pytest.mark.parametrize("command", ["host", "join", "demo"])
def test_cli_has_a_microphone_option_next_to_the_camera(command):
    parser = build_parser()
    args = parser.parse_args([command, "--microphone", "hw:2,0", "--camera", "none"])
    assert args.microphone == "hw:2,0" and args.camera == "none"
    defaults = parser.parse_args([command])
    assert defaults.microphone == ("synthetic" if command == "demo" else "auto")


def test_headless_demo_refuses_a_microphone_in_one_line():
    result = subprocess.run([sys.executable, "-m", "assessiq", "demo", "--headless",
                             "--microphone", "none"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "browser demo" in result.stderr


async def test_missing_microphone_by_name_is_one_sentence_and_the_call_goes_on():
    plan = plan_call("host", camera="synthetic", microphone="hw:42,0", speaker=None)
    plan.config.keep_audio_seconds = 0.5  # to check what we hear
    other = MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, fps=10,
                        tone_hz=600)
    (pa, me), (pb, peer) = await connect_pair(plan.config, other)
    try:
        assert not me.has_microphone and me.muted
        said = describe_problems(me.problems)
        assert len(said) == 1 and "\n" not in said[0]
        assert said[0].startswith("No microphone — the interview continues without sound")
        assert "hw:42,0" in said[0]
        deadline = time.monotonic() + 20
        while (peer.remote_video.received.count < 5 or me.remote_video.received.count < 5
               or len(me.remote_audio.recent()) < 24000):
            assert time.monotonic() < deadline, "the call did not go on without the microphone"
            await asyncio.sleep(0.05)
        assert abs(dominant_frequency(me.remote_audio.recent()) - 600) < 12  # we still hear
        stats = await peer.stats()
        assert stats["audio"]["frames_received"] == 0  # and nothing came from the missing mic
    finally:
        for closing in (me.close(), peer.close(), pa.close(), pb.close()):
            await closing


def _played(path: Path) -> np.ndarray:
    """The non-silent audio PortAudio wrote (left channel, -1..1). The ALSA null device has
    no clock, so PortAudio asks for audio as fast as it can and gets silence between the
    20 ms packets: silent stretches of 8 samples or more are cut out."""
    left = np.fromfile(path, dtype="<i2").reshape(-1, 2)[:, 0]
    silent = np.concatenate(([0], (left == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(silent))
    keep = np.ones(len(left), dtype=bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= 8:
            keep[start:end] = False
    return np.asarray(left[keep], dtype=np.float32) / 32768.0


def test_named_microphone_is_sent_and_the_received_tone_is_played(tmp_path):
    if not ALSA_CONF.exists():
        pytest.skip("needs ALSA's alsa.conf (libasound2-data) for the file devices")
    mic, sink = tmp_path / "tone.raw", tmp_path / "played.raw"
    t = np.arange(48000 * 10) / 48000
    mic.write_bytes((np.sin(2 * np.pi * TONE_HZ * t) * 12000).astype("<i2").tobytes())
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(mic=mic, sink=sink))
    env = {**os.environ, "HOME": str(tmp_path), "ALSA_CONFIG_PATH": str(ALSA_CONF)}
    child = Path(__file__).with_name("media_alsa_child.py")
    try:
        result = subprocess.run([sys.executable, str(child), "1.0"], capture_output=True,
                                text=True, timeout=90, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["talker_problems"] == [] and seen["has_microphone"], seen
        assert seen["listener_problems"] == [] and seen["player_open"], seen
        # the microphone picked by name reached the other side at its own pitch ...
        assert abs(seen["received_hz"] - TONE_HZ) <= 0.02 * TONE_HZ, seen
        # ... and the output device really consumed it: what was played is that tone
        played = _played(sink)
        assert len(played) >= 24000, len(played)
        assert abs(dominant_frequency(played[-48000:]) - TONE_HZ) <= 0.02 * TONE_HZ
    finally:
        sink.unlink(missing_ok=True)  # the clock-less null device makes this file large
