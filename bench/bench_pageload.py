"""Page load to interactive, for each page of both apps, beside a blank NiceGUI page.

"Interactive": the page's own control is in the DOM and NiceGUI's socket is connected (its
buttons answer from then on); for the interview pages also the shared editor's Yjs document
synced with its process (the person can type). Measured inside the page, from the start of
navigation (`performance.now()`, stamped by a script installed before any page script runs),
in headless Chromium with the cache kept (a person reloading or coming back). The baseline is
a NiceGUI page with one label and one button, served with the same `ui.run` options
(bench/pageload/blank_app.py): what the framework costs before the app adds anything.
Interleaved: each round loads every page once, the blank page first.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Row, median

ROOT = Path(__file__).resolve().parent.parent

_PROBE = r"""
(() => {
  const want = () => window.__aiqWant || null;
  const tick = () => {
    const w = want();
    if (w && !window.__aiqReady) {
      const el = document.querySelector(`[data-testid=${w.testid}]`);
      const ed = document.querySelector("[data-testid=editor]");
      const synced = !w.editor || (ed && ed.aiqEditor && ed.aiqEditor.provider.synced);
      if (el && window.socket && window.socket.connected && synced) {
        window.__aiqReady = performance.now();
        return;
      }
    }
    requestAnimationFrame(tick);
  };
  const m = /[?&]aiq=([\w-]+)(\.editor)?/.exec(location.search);  // what this load awaits
  window.__aiqWant = m ? {testid: m[1], editor: !!m[2]} : null;
  requestAnimationFrame(tick);
})();
"""


_LOADS = [0]


def _load(driver: Any, url: str, testid: str, editor: bool) -> float:
    """One navigation to `url` (a new document each time: a query the app ignores, unique
    per load); ms from its start to interactive."""
    from browser_helpers import wait_for

    _LOADS[0] += 1
    driver.get(f"{url}?aiq={testid}{'.editor' if editor else ''}&n={_LOADS[0]}")
    ready = wait_for(lambda: driver.execute_script("return window.__aiqReady || null"),
                     timeout=60, interval=0.05, what=f"{url} interactive")
    return float(ready)


def run(quick: bool) -> list[Row]:
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_helpers import App, chromium, open_interview

    rounds = 3 if quick else 9
    data = Path(tempfile.mkdtemp(prefix="aiq-bench-pageload-"))
    blank = App([], data, module="bench.pageload.blank_app")
    host = App(["host", "--camera", "synthetic"], data)
    cand = App(["join", "--camera", "synthetic"], data)
    replay: App | None = None
    times: dict[str, list[float]] = {}
    try:
        with chromium() as hd, chromium() as cd:
            for d in (hd, cd):
                d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _PROBE})
            # the first pages, before an interview exists (each app's opening screen)
            base = host.url.rsplit("/host", 1)[0]
            cand_base = cand.url.rsplit("/join", 1)[0]
            pages_before = [("blank NiceGUI page, no interview yet", hd, blank.url, "ready",
                             False),
                            ("interviewer: setup", hd, host.url, "create", False),
                            ("candidate: paste the invite", cd, cand.url, "invite-input", False)]
            for _ in range(rounds):
                for name, d, url, testid, editor in pages_before:
                    times.setdefault(name, []).append(_load(d, url, testid, editor))
            open_interview(hd, cd, host.url, cand.url)
            pages = [("blank NiceGUI page, the call running", hd, blank.url, "ready", False),
                     ("interviewer: interview room", hd, f"{base}/host/interview", "run", True),
                     ("candidate: interview room", cd, f"{cand_base}/join/interview", "run",
                      True)]
            for _ in range(rounds):
                for name, d, url, testid, editor in pages:
                    times.setdefault(name, []).append(_load(d, url, testid, editor))
            hd.get(f"{base}/host/interview")
            from browser_helpers import click, wait_for

            click(hd, "end")
            click(hd, "end-confirm")
            wait_for(lambda: hd.current_url.endswith("/host/ended"), timeout=90,
                     what="sealed")
            sealed = next(p for p in (data / "sessions").glob("*.aiq")
                          if not p.name.endswith(".candidate.aiq"))
            replay = App(["replay", str(sealed)], data)
            for _ in range(rounds):
                times.setdefault("blank NiceGUI page, after the seal", []).append(
                    _load(hd, blank.url, "ready", False))
                times.setdefault("replay of the sealed session", []).append(
                    _load(hd, replay.url, "verdict", False))
    finally:
        for app in (blank, host, cand, replay):
            if app is not None:
                app.stop()
    note = (f"{rounds} loads each, interleaved with the blank page; headless Chromium, cache "
            "kept; two app processes on 2 cores")
    floors = {"setup": "blank NiceGUI page, no interview yet",
              "invite": "blank NiceGUI page, no interview yet",
              "room": "blank NiceGUI page, the call running",
              "replay": "blank NiceGUI page, after the seal"}
    rows = []
    for name, values in times.items():
        if name.startswith("blank"):
            rows.append(Row("pageload", f"{name} → interactive p50", median(values), "ms",
                            note=f"{len(values)} loads"))
            continue
        floor = next(times[b] for k, b in floors.items() if k in name)
        rows.append(Row("pageload", f"{name} → interactive p50", median(values), "ms",
                        baseline=median(floor), baseline_name="blank page, same phase",
                        note=f"{note}; max {max(values):.0f} ms"))
    return rows
