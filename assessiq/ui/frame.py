"""The layout every page shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nicegui import ui

__all__ = ["frame", "theme_toggle"]

A11Y_JS = (Path(__file__).parent / "static" / "a11y.js").read_text(encoding="utf-8")

_THEMES = {None: ("brightness_auto", "the system's"), True: ("dark_mode", "dark"),
           False: ("light_mode", "light")}


def theme_toggle() -> ui.button:
    """Light, dark, or the system's theme (the default), for this page: each press moves on."""
    dark = ui.dark_mode(None)
    button = ui.button().props('flat round color=white data-testid="theme"').mark("theme")
    with button:
        tip = ui.tooltip("")

    def show() -> None:
        icon, words = _THEMES[dark.value]
        button.props(f'icon={icon} aria-label="theme: {words} (change)"')
        tip.set_text(f"Theme: {words}")

    def cycle() -> None:
        dark.value = {None: True, True: False, False: None}[dark.value]
        show()

    button.on_click(cycle)
    show()
    return button


@contextmanager
def frame(title: str, *, role: str) -> Iterator[None]:
    """A header with the app name, the role and the screen's title; the page goes below."""
    ui.page_title(f"AssessIQ — {title}")
    ui.add_body_html(f"<script>{A11Y_JS}</script>")  # keyboard access to scrolled tables
    colour = {"host": "bg-indigo-8", "candidate": "bg-teal-8"}.get(role, "bg-grey-8")
    with ui.header().classes(f"{colour} items-center q-py-xs"):
        ui.label("AssessIQ").classes("text-h6")
        shown = f"· {role} · {title}" if title != role else f"· {title}"
        ui.label(shown).classes("text-subtitle1") \
            .props('data-testid="title" role="heading" aria-level="1"')
        ui.space()
        theme_toggle()
    with ui.column().classes("w-full q-pa-md gap-3"):
        yield
