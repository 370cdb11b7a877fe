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
    report = {}
    for me, peer, tone_from_peer in ((offerer, answerer, 660.0), (answerer, offerer, 440.0)):
        v, sent = me["video"], peer["video_sent"]
        # frames arrived, each stamp readable, strictly in the sender's order
        assert v["stamped_frames"] >= 20, v
        assert v["unreadable_frames"] <= v["stamped_frames"] // 10, v
        assert v["counters_increasing"], v
        # few gaps: of the frames the sender stamped between the first and the last one we
        # read, at least half arrived, and at most a quarter of them follow a jump
        assert v["stamped_frames"] >= 0.5 * v["counter_span"], v
        assert v["gaps"] <= 0.25 * v["stamped_frames"], v
        # the rate we received is close to the rate the other process sent (a proportion of
        # what it measured on its own side, so a slow machine cannot fail or pass this alone)
        assert sent["frames"] > 0 and v["fps"] >= 0.5 * sent["fps"], (v, sent)
        assert v["fps"] <= 1.2 * sent["fps"], (v, sent)
        # one clock on one machine: every frame decoded after it was captured
        assert 0 < v["latency_ms_min"] <= v["latency_ms_p50"] <= v["latency_ms_p95"], v
        # the other side's tone, at its own pitch (±2 %)
        assert abs(me["tone_hz_received"] - tone_from_peer) <= 0.02 * tone_from_peer, me
        s = me["stats"]
        assert s["video"]["frames_sent"] > 0 and s["video"]["frames_received"] > 0
        assert s["audio"]["packets_received"] > 0 and s["problems"] == []
        assert me["jpeg_bytes"] > 1000
        report[me["role"]] = {"fps_received": v["fps"], "fps_sent_by_peer": sent["fps"],
                              "gaps": v["gaps"], "latency_ms_p50": v["latency_ms_p50"],
                              "latency_ms_p95": v["latency_ms_p95"],
                              "tone_hz": me["tone_hz_received"], "cpu": me["cpu_percent"]}
    print("two-process call:", json.dumps(report))
