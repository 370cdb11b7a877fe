"""The layout every page shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

__all__ = ["frame"]


@contextmanager
def frame(title: str, *, role: str) -> Iterator[None]:
    """A header with the app name, the role and the screen's title; the page goes below."""
    ui.page_title(f"AssessIQ — {title}")
    colour = {"host": "bg-indigo-8", "candidate": "bg-teal-8"}.get(role, "bg-grey-8")
    with ui.header().classes(f"{colour} items-center q-py-xs"):
        ui.label("AssessIQ").classes("text-h6")
        shown = f"· {role} · {title}" if title != role else f"· {title}"
        ui.label(shown).classes("text-subtitle1").props('data-testid="title"')
    with ui.column().classes("w-full q-pa-md gap-3"):
        yield
