"""A keystroke in one browser → rendered in the other browser (goal: p95 ≤ 50 ms).

Two `assessiq` processes (host and candidate app) connected peer to peer on 127.0.0.1, each
with its own headless Chromium. One character is typed at a time, ~8 a second like a person.
The typing browser stamps each keydown, the other browser stamps the DOM mutation that shows
the character (both with `performance.timeOrigin + performance.now()`: one machine, one clock).
Path: browser A → websocket → process A → CRDT → WebRTC data channel → process B → websocket
→ browser B → CodeMirror render.

Baseline, same run: keydown → the typing page's Yjs update handed to its websocket (the page
awaits no reply since the editor became a y-sync peer of its process). bench_typing.py sets
the keystroke path beside a pure-browser Yjs + y-webrtc editor.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Row, median, percentile

ROOT = Path(__file__).resolve().parent.parent

_SENDER_JS = """
const ed = document.querySelector("[data-testid=editor]").aiqEditor;
window.__sent = []; window.__acks = [];
const now = () => performance.timeOrigin + performance.now();
ed.editor.contentDOM.addEventListener("keydown", () => window.__sent.push(now()), true);
// the page's own update leaving for its process: the websocket send (no reply is awaited)
const ws = ed.provider.ws, send = ws.send.bind(ws);
ws.send = (m) => { if (m[0] === 0 && m[1] === 2) window.__acks.push(now()); return send(m); };
"""

_RECEIVER_JS = """
const ed = document.querySelector("[data-testid=editor]").aiqEditor;
window.__seen = [];
const now = () => performance.timeOrigin + performance.now();
let last = ed.editor.state.doc.length;
new MutationObserver(() => {
  const len = ed.editor.state.doc.length;
  if (len > last) { for (let i = last; i < len; i++) window.__seen.push(now()); last = len; }
}).observe(ed.editor.contentDOM, {childList: true, subtree: true, characterData: true});
"""


def _measure(sender: Any, receiver: Any, n: int) -> tuple[list[float], list[float]]:
    from selenium.webdriver.common.by import By

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_helpers import focus_editor_at, wait_for

    focus_editor_at(sender, 0)
    sender.execute_script(_SENDER_JS)
    receiver.execute_script(_RECEIVER_JS)
    content = sender.find_element(By.CSS_SELECTOR, "[data-testid=editor] .cm-content")
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(n):
        content.send_keys(letters[i % 26])
        time.sleep(0.12)
    wait_for(lambda: receiver.execute_script("return window.__seen.length") >= n,
             timeout=30, what="all keystrokes rendered")
    sent = sender.execute_script("return window.__sent")
    acks = sender.execute_script("return window.__acks")
    seen = receiver.execute_script("return window.__seen")
    latency = [seen[i] - sent[i] for i in range(n)]
    own = [acks[i] - sent[i] for i in range(min(n, len(acks)))]
    return latency, own


def run(quick: bool) -> list[Row]:
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_helpers import App, chromium, editor_text, open_interview, wait_for

    n = 40 if quick else 150
    data = Path(tempfile.mkdtemp(prefix="aiq-bench-ui-"))
    host = App(["host", "--camera", "synthetic"], data)
    cand = App(["join", "--camera", "synthetic"], data)
    try:
        with chromium() as hd, chromium() as cd:
            open_interview(hd, cd, host.url, cand.url)
            wait_for(lambda: editor_text(hd) and editor_text(cd) == editor_text(hd))
            h2c, h_own = _measure(hd, cd, n)
            c2h, c_own = _measure(cd, hd, n)
            cpu = _process_cpu([host.proc.pid, cand.proc.pid], 5.0 if quick else 15.0)
    finally:
        host.stop()
        cand.stop()
    note = f"{n} keystrokes, ~8/s, two Chromium + two app processes on 2 cores"
    rows = []
    for what, lat, own in (("host→candidate", h2c, h_own), ("candidate→host", c2h, c_own)):
        rows.append(Row("ui", f"keystroke {what} browser render p50", median(lat), "ms",
                        baseline=median(own), baseline_name="keydown → update sent p50",
                        goal="", note=note))
        rows.append(Row("ui", f"keystroke {what} browser render p95", percentile(lat, 95),
                        "ms", baseline=percentile(own, 95),
                        baseline_name="keydown → update sent p95", goal="p95 ≤ 50 ms",
                        note=f"max {max(lat):.1f} ms"))
    for who, share in (("candidate", cpu[1]), ("interviewer", cpu[0])):
        rows.append(Row("ui", f"{who}'s app process CPU in the interview", share * 100,
                        "% of a core", goal="≤ 60" if who == "candidate" else "",
                        note="whole process: the call at the apps' 640×480, 10 fps, both ways"
                             + (", the proctor on the tap" if who == "candidate" else "")
                             + ", video tiles pushed to its open page; idle typing"))
    return rows


def _process_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU (user + system, all threads) over `seconds`, as a share of a core."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    before = [used(p) for p in pids]
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return [(used(p) - b) / wall for p, b in zip(pids, before, strict=True)]
