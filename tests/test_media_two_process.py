"""Two processes on 127.0.0.1 exchange stamped synthetic video and a tone each way: the
stamps prove the frames, their order, the rate and the capture-to-decoded latency; the FFT
proves the tone."""

from __future__ import annotations

import json
import subprocess
import sys


def run_pair(seconds: float = 3.0) -> tuple[dict, dict]:
    cmd = [sys.executable, "-m", "assessiq.media.loopback"]
    common = ["--seconds", str(seconds), "--warmup", "0.5"]
    offer = subprocess.Popen([*cmd, "offer", "--tone", "440", *common],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert offer.stdout is not None
        port = json.loads(offer.stdout.readline())["port"]
        answer = subprocess.run([*cmd, "answer", "--port", str(port), "--tone", "660", *common],
                                capture_output=True, text=True, timeout=90)
        assert answer.returncode == 0, answer.stderr[-2000:]
        out, err = offer.communicate(timeout=30)
        assert offer.returncode == 0, err[-2000:]
    finally:
        if offer.poll() is None:
            offer.kill()
    return json.loads(out.strip().splitlines()[-1]), json.loads(answer.stdout.strip())


def test_two_processes_exchange_stamped_video_and_tones():
    offerer, answerer = run_pair()
    for me, tone_from_peer in ((offerer, 660.0), (answerer, 440.0)):
        v = me["video"]
        # frames arrived, each stamp readable, in the sender's order
        assert v["stamped_frames"] >= 20, v
        assert v["unreadable_frames"] <= v["stamped_frames"] // 10, v
        assert v["counters_increasing"], v
        # one clock on one machine: decoded after captured, within the run
        assert 0 < v["latency_ms_min"] <= v["latency_ms_p50"] <= v["latency_ms_p95"] < 3000, v
        assert v["fps"] > 0
        # the other side's tone, at its own pitch
        assert abs(me["tone_hz_received"] - tone_from_peer) < 3, me["tone_hz_received"]
        s = me["stats"]
        assert s["video"]["frames_sent"] > 0 and s["video"]["frames_received"] > 0
        assert s["audio"]["packets_received"] > 0 and s["problems"] == []
        assert me["jpeg_bytes"] > 1000
    print(json.dumps({k: (offerer[k], answerer[k]) for k in ("cpu_percent", "video")}))
