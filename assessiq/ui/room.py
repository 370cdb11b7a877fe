"""The interview room's shape, shared by both people's interview pages: three resizable panes
that fill the window under the header — the problem with its tests (left), the editor with
Run, the console and the results (middle), the call and the side panel (right) — and the
pieces the two pages place the same way (the problem and its tests, the console, the
editor's font size)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from ..room.changes import Changes
from ..room.problems import canonical_language
from .components import results_view
from .editor import SharedEditor
from .live import follow

__all__ = ["FONT_SIZES", "Panes", "RunArea", "console", "follow_language", "font_size",
           "problem_panel", "room_panes", "run_area"]

FONT_SIZES = [12, 13, 14, 16, 18, 20, 24]

_CSS = """
.aiq-room { height: calc(100vh - 120px); min-height: 420px; }
.aiq-work .q-btn, .aiq-work .aiq-status { white-space: nowrap; }
.aiq-pane { height: 100%; overflow-y: auto; }
.aiq-work { height: 100%; display: flex; flex-direction: column; flex-wrap: nowrap; }
.aiq-work .aiq-editor-slot { flex: 1 1 0; min-height: 180px; }
.aiq-work .aiq-output { flex: 0 1 34%; min-height: 96px; overflow-y: auto; }
.aiq-problem h1 { font-size: 1.3rem; line-height: 1.6rem; margin: 0 0 .4rem 0; }
.aiq-problem h2 { font-size: 1.1rem; line-height: 1.4rem; margin: .6rem 0 .3rem 0; }
.aiq-problem p { margin-bottom: .5rem; }
.aiq-test pre { margin: 0; padding: 2px 6px; white-space: pre-wrap; font-size: .8rem;
  background: rgba(127, 127, 127, .12); border-radius: 3px; }
body.body--dark .cm-editor { background: #1d2125; color: #e4e6e8; }
body.body--dark .cm-gutters { background: #23282d; color: #a8b1bb; border-color: #30363d; }
body.body--dark .cm-activeLine, body.body--dark .cm-activeLineGutter {
  background: rgba(255, 255, 255, .05); }
body.body--dark .cm-cursor { border-left-color: #e4e6e8; }
body.body--dark .cm-selectionBackground { background: rgba(88, 166, 255, .3) !important; }
"""


@dataclass
class Panes:
    """Where each part of a room page goes (each a column; `work` fills its height)."""

    problem: ui.column
    work: ui.column
    side: ui.column


def room_panes() -> Panes:
    """The three panes, resizable by dragging their dividers."""
    ui.add_css(_CSS)
    with ui.splitter(value=24, limits=(10, 50)).classes("w-full aiq-room") \
            .props('data-testid="room" role="group" '
                   'aria-label="problem | editor and side panel"') as outer:
        with outer.before:
            problem = ui.column().classes("w-full q-pr-sm gap-2 aiq-pane") \
                .props('data-testid="problem-pane"')
        with outer.after, ui.splitter(value=66, limits=(35, 85)).classes("w-full h-full") \
                .props('role="group" aria-label="editor | side panel"') as inner:
            with inner.before:
                work = ui.column().classes("w-full q-px-sm gap-2 aiq-work") \
                    .props('data-testid="work-pane"')
            with inner.after:
                side = ui.column().classes("w-full q-pl-sm gap-2 aiq-pane") \
                    .props('data-testid="side-pane"')
    return Panes(problem, work, side)


def problem_panel(doc: Any, changes: Changes) -> None:
    """The problem statement (its title a compact heading) and the public tests — name,
    input, expected output — visible before the first run; redrawn when the document's
    problem or tests change (`changes`' "problem", "public_tests")."""
    statement = ui.markdown(doc.problem).classes("w-full aiq-problem") \
        .props('data-testid="problem"')
    ui.label("Tests").classes("text-subtitle1")
    tests = ui.column().classes("w-full gap-1").props('data-testid="test-list"')
    shown: dict[str, Any] = {"problem": doc.problem, "tests": None}

    def refresh() -> None:
        if doc.problem != shown["problem"]:
            shown["problem"] = doc.problem
            statement.set_content(doc.problem)
        public = doc.public_tests()
        if public != shown["tests"]:
            shown["tests"] = public
            tests.clear()
            with tests:
                if not public:
                    ui.label("No public tests.").classes("text-caption")
                for t in public:
                    with ui.column().classes("w-full gap-0 aiq-test") \
                            .props('data-testid="test-case"'):
                        ui.label(str(t.get("name", ""))).classes("text-weight-medium")
                        ui.label("input").classes("text-caption")
                        ui.html(_pre(str(t.get("stdin", ""))))
                        ui.label("expected output").classes("text-caption")
                        ui.html(_pre(str(t.get("expected", ""))))

    follow(changes, ("problem", "public_tests"), refresh)


def _pre(text: str) -> str:
    import html

    return f"<pre>{html.escape(text) or '&nbsp;'}</pre>"


async def _submit(run: Callable[[str], Any], stdin: str) -> None:
    """`run(stdin)`, awaited when it is a coroutine (the candidate's asks its host)."""
    result = run(stdin)
    if hasattr(result, "__await__"):
        await result


def console(run: Callable[[str], Any]) -> ui.textarea:
    """Run the shared code with your own standard input (the output appears with the other
    runs, marked with its input). `run(stdin)` submits it."""
    with ui.expansion("Console: run with your own input").classes("w-full") \
            .props('dense data-testid="console"').mark("console"):
        stdin = ui.textarea("Standard input", placeholder="what the program reads") \
            .classes("w-full").props('outlined dense autogrow data-testid="console-input"') \
            .mark("console-input")
        ui.button("Run with this input", on_click=lambda: _submit(run, stdin.value or "")) \
            .props('data-testid="console-run"').mark("console-run")
    return stdin


@dataclass
class RunArea:
    """Run, the line saying why a run was refused, and the results column."""

    button: ui.button
    refused: ui.label
    results: ui.column


def run_area(run: Callable[[str], Any], changes: Changes, doc: Any,
             hidden: Callable[[], dict[str, list[dict[str, Any]]]] | None = None) -> RunArea:
    """Under the editor, on both pages: Run (`run("")`), the refusal line, the console
    (`run(stdin)`) and the results — the document's runs, redrawn when they change
    (`changes`' "runs"; with `hidden`, the interviewer's hidden tests' outcomes too)."""
    with ui.row().classes("items-center w-full no-wrap"):
        button = ui.button("Run", on_click=lambda: _submit(run, "")) \
            .props('data-testid="run"').mark("run")
        refused = ui.label("").classes("text-negative").props('data-testid="run-refused"')
    console(run)
    results = ui.column().classes("w-full aiq-output").props('data-testid="results"')

    def show_runs() -> None:
        results.clear()
        with results:
            results_view(doc.runs(), hidden() if hidden is not None else None)

    follow(changes, "runs", show_runs)
    return RunArea(button, refused, results)


def follow_language(editor: SharedEditor, doc: Any, changes: Changes,
                    select: ui.select | None = None) -> None:
    """The editor's language (and the language `select`, on the interviewer's page) follows
    the document's when the interviewer switches it (`changes`' "language")."""
    def show() -> None:
        if doc.language and editor.language != doc.language:
            editor.set_language(doc.language)
        if select is not None and doc.language:
            select.set_value(canonical_language(doc.language))

    follow(changes, "language", show, now=False)


def font_size(editor: SharedEditor) -> ui.select:
    """The editor's font size (this page only)."""

    def apply(size: Any) -> None:
        editor.style(f"font-size: {int(size)}px")

    select = ui.select(FONT_SIZES, value=14, label="Font",
                       on_change=lambda e: apply(e.value)).classes("w-20") \
        .props('dense data-testid="font-size"').mark("font-size")
    apply(14)
    return select
