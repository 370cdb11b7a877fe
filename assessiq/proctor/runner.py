"""The live proctor: frames from a source, analysis in a worker thread, events on the loop.

    proctor = Proctor(sink)
    await proctor.run(SyntheticCamera(timeline).stream())   # or CameraSource(), a video...

At most one frame is being analysed at a time; frames that arrive meanwhile are dropped
(counted), and frames arriving sooner than the current rate allows are skipped. The rate adapts
between min_fps and max_fps so analysis uses about `cpu_budget` of one core (`RateController`,
fed each analysis' CPU cost). The sink is called on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from .analyzer import FrameAnalyzer
from .config import ProctorConfig
from .detectors import DetectorBank, EventSink
from .findings import FrameFindings
from .frames import Frame, Image
from .meter import Meter, ProctorStats
from .rate import RateController

__all__ = ["Analyzer", "Proctor"]

log = logging.getLogger(__name__)


class Analyzer(Protocol):
    """What the proctor needs of a frame analyser (`FrameAnalyzer` is the real one)."""

    def analyse(self, frame: Image, t: float = 0.0) -> FrameFindings: ...

    def close(self) -> None: ...


class Proctor:
    """Watches a frame source and sends integrity events to `sink`."""

    def __init__(self, sink: EventSink, config: ProctorConfig | None = None, *,
                 analyzer: Analyzer | None = None) -> None:
        self.config = config or ProctorConfig()
        self.sink = sink
        self._analyzer = analyzer
        self._own_analyzer = analyzer is None
        self.bank = DetectorBank(sink, self.config)
        self.meter = Meter(self.config.heartbeat_every)
        cfg = self.config
        self.rate_control = RateController(cfg.min_fps, cfg.max_fps, cfg.cpu_budget)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proctor")
        self._stopping = False
        self.last: FrameFindings | None = None

    @property
    def rate(self) -> float:
        """The current analysis rate (frames per second of frame time)."""
        return self.rate_control.rate

    @property
    def stats(self) -> ProctorStats:
        return self.meter.stats

    def stop(self) -> None:
        """Ask `run` to finish after the frame in hand."""
        self._stopping = True

    async def run(self, source: Iterable[Frame] | AsyncIterable[Frame]) -> ProctorStats:
        loop = asyncio.get_running_loop()
        if self._analyzer is None:
            self._analyzer = await loop.run_in_executor(
                self._pool, lambda: FrameAnalyzer(self.config.analyzer))
        analyzer: Analyzer = self._analyzer
        pending: asyncio.Future[FrameFindings] | None = None
        next_due: float | None = None
        last_t = 0.0
        try:
            async for t, image in _aiter(source):
                if self._stopping:
                    break
                self.meter.frame(t)
                last_t = t
                if pending is not None and pending.done():
                    pending = None  # its done-callback has used the result already
                if next_due is not None and t < next_due - 1e-9:
                    continue
                if pending is not None:
                    self.meter.dropped()
                    continue
                next_due = t + 1.0 / self.rate
                pending = loop.run_in_executor(self._pool, analyzer.analyse, image, t)
                pending.add_done_callback(self._collect)  # events go out as soon as ready
            if pending is not None:
                await asyncio.wait({pending})
                await asyncio.sleep(0)  # let its done-callback run
            self.bank.flush(last_t)
        finally:
            if self._own_analyzer and self._analyzer is not None:
                await loop.run_in_executor(self._pool, self._analyzer.close)
                self._analyzer = None
            self._pool.shutdown(wait=False)
        return self.meter.stats

    def _collect(self, done: asyncio.Future[FrameFindings]) -> None:
        """Use a finished analysis; a frame that could not be analysed is logged and counted
        as dropped, never the end of the proctor."""
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            log.warning("frame not analysed: %s", exc)
            self.meter.dropped()
            return
        self._finish(done.result())

    def _finish(self, f: FrameFindings) -> None:
        self.last = f
        cost = f.cpu_ms / 1000
        self.meter.analysed(cost)
        self.rate_control.update(cost)
        self.bank.update(f)
        beat = self.meter.heartbeat(f.t, self.rate, self.bank.calibration.done)
        if beat is not None:
            self.sink("proctor.heartbeat", beat)


async def _aiter(source: Iterable[Frame] | AsyncIterable[Frame]) -> AsyncIterator[Frame]:
    """Iterate a source; blocking iterators (a camera) are read in a thread."""
    if isinstance(source, AsyncIterable):
        async for frame in source:
            yield frame
        return
    it: Iterator[Frame] = iter(source)
    while True:
        item: Frame | None = await asyncio.to_thread(_next, it)
        if item is None:
            return
        yield item


def _next(it: Iterator[Frame]) -> Frame | None:
    return next(it, None)
