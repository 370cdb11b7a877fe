"""Run frames through analysis and detectors synchronously, on the frames' own clock.

For files, tests and the synthetic camera at a simulated clock: no sleeping, no threads, the
same result every run. The live proctor (`runner.Proctor`) uses the same pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .analyzer import FrameAnalyzer
from .config import ProctorConfig
from .detectors import DetectorBank, EventSink
from .findings import FrameFindings
from .frames import Frame
from .meter import Meter, ProctorStats

__all__ = ["analyse_stream"]


def analyse_stream(
    frames: Iterable[Frame],
    sink: EventSink,
    *,
    config: ProctorConfig | None = None,
    analyzer: FrameAnalyzer | None = None,
    rate: float | None = None,
    on_findings: Callable[[FrameFindings], None] | None = None,
    heartbeats: bool = True,
) -> ProctorStats:
    """Analyse frames at most `rate` per second of frame time (default: config.max_fps),
    feed the detectors and send events to `sink`; active conditions end at the last frame."""
    cfg = config or ProctorConfig()
    rate = rate or cfg.max_fps
    own = analyzer is None
    an = analyzer or FrameAnalyzer(cfg.analyzer)
    bank = DetectorBank(sink, cfg)
    meter = Meter(cfg.heartbeat_every)
    next_due: float | None = None
    last_t = 0.0
    try:
        for t, image in frames:
            meter.frame(t)
            last_t = t
            if next_due is not None and t < next_due - 1e-9:
                continue
            next_due = t + 1.0 / rate if next_due is None else max(next_due + 1.0 / rate, t)
            findings = an.analyse(image, t)
            meter.analysed(findings.cpu_ms / 1000)
            if on_findings is not None:
                on_findings(findings)
            bank.update(findings)
            beat = meter.heartbeat(t, rate, bank.calibration.done) if heartbeats else None
            if beat is not None:
                sink("proctor.heartbeat", beat)
        bank.flush(last_t)
    finally:
        if own:
            an.close()
    return meter.stats
