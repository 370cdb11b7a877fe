"""The baseline of bench_pageload.py: a NiceGUI page with one label and one button, served the
way the app serves its pages (same NiceGUI, same `ui.run` options) — what any NiceGUI page
costs to load before the app adds anything. `python -m bench.pageload.blank_app --no-browser
--port N` (the arguments tests/browser_helpers.App passes)."""

from __future__ import annotations

import argparse

from nicegui import ui


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    @ui.page("/")
    def page() -> None:
        ui.label("blank")
        ui.button("ready").props('data-testid="ready"')

    print(f"blank: open http://127.0.0.1:{args.port}/", flush=True)
    ui.run(host="127.0.0.1", port=args.port, reload=False, show=False,
           show_welcome_message=False, uvicorn_logging_level="warning")


if __name__ in {"__main__", "__mp_main__"}:
    main()
