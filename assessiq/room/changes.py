"""Named change events for the pages: a controller says what changed ("runs", "phase",
"events" …), each open page re-renders only the parts that show it.

    changes = Changes()
    off = changes.on(("runs", "phase"), redraw)   # redraw() once per burst of either
    changes.emit("runs")                          # from anywhere: a pycrdt observer, a thread
    off()                                         # the page closed

`emit` only marks the topic dirty; the listeners run on the event loop's next iteration, each
once however many times its topics were emitted in between (a keystroke storm, a transaction
that set five keys): so `emit` is safe inside a pycrdt commit, where the document must not be
read, and costs a set insertion. A listener given `at_most_every=s` runs at most once per `s`
seconds, and always once after the last change (a trailing call), for work too costly to
redo on every change (the provenance panel). Without a running loop (a test that is not
async) nothing runs until `flush()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["Changes", "Listener"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Listener:
    """One subscription: `callback()` after any of `topics` changed."""

    topics: frozenset[str]
    callback: Callable[[], object]
    at_most_every: float = 0.0
    last: float = field(default=float("-inf"))  # loop time of the last call
    pending: asyncio.TimerHandle | None = None  # a trailing call, when throttled
    active: bool = True


class Changes:
    """What changed, for whoever listens. One per controller; see the module's docstring."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._dirty: set[str] = set()
        self._scheduled = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[object]] = set()
        self.emitted: dict[str, int] = {}
        """How many times each topic was emitted (for tests and logs)."""
        self.delivered: dict[str, int] = {}
        """How many flushes carried each topic (a burst of emits is one)."""

    def on(self, topics: str | Iterable[str], callback: Callable[[], object], *,
           at_most_every: float = 0.0) -> Callable[[], None]:
        """Call `callback()` after any of `topics` changed; returns the unsubscribe function
        (safe to call twice)."""
        names = frozenset([topics] if isinstance(topics, str) else topics)
        listener = Listener(names, callback, at_most_every)
        self._listeners.append(listener)
        self._bind()

        def off() -> None:
            listener.active = False
            if listener.pending is not None:
                listener.pending.cancel()
                listener.pending = None
            if listener in self._listeners:
                self._listeners.remove(listener)

        return off

    @property
    def listeners(self) -> int:
        """How many subscriptions are open (a closed page must leave none behind)."""
        return len(self._listeners)

    def emit(self, *topics: str) -> None:
        """`topics` changed. Returns at once; listeners run on the loop's next iteration."""
        with self._lock:
            for topic in topics:
                self.emitted[topic] = self.emitted.get(topic, 0) + 1
            self._dirty.update(topics)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop or running
        if loop is None or loop.is_closed():
            with self._lock:
                self._scheduled = False  # delivered by the next `flush()`
            return
        self._loop = loop
        if running is loop:
            loop.call_soon(self.flush)
        else:  # another thread (a worker): hand it to the loop's own thread
            loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        """Deliver what changed since the last flush (normally called by the loop)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            self._scheduled = False
        if not dirty:
            return
        for topic in dirty:
            self.delivered[topic] = self.delivered.get(topic, 0) + 1
        for listener in list(self._listeners):
            if listener.active and listener.topics & dirty:
                self._deliver(listener)

    def _bind(self) -> None:
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    def _deliver(self, listener: Listener) -> None:
        if listener.at_most_every <= 0 or self._loop is None:
            self._call(listener)
            return
        if listener.pending is not None:
            return  # a trailing call is due: it will see this change too
        now = self._loop.time()
        wait = listener.last + listener.at_most_every - now
        if wait <= 0:
            self._call(listener)
        else:
            listener.pending = self._loop.call_later(wait, self._trailing, listener)

    def _trailing(self, listener: Listener) -> None:
        listener.pending = None
        if listener.active:
            self._call(listener)

    def _call(self, listener: Listener) -> None:
        if self._loop is not None:
            listener.last = self._loop.time()
        try:
            result = listener.callback()
            if asyncio.iscoroutine(result):  # an async listener runs as its own task
                task = asyncio.ensure_future(result)
                self._tasks.add(task)  # (held: a task nobody references may be collected)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(_log_failure)
        except Exception:  # one broken view must not stop the others
            log.exception("a change listener failed (%s)", ", ".join(sorted(listener.topics)))


def _log_failure(task: asyncio.Future[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a change listener failed", exc_info=task.exception())
