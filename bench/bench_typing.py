"""Typing: a keystroke in one browser → the character rendered in the other browser.

Measured the same way for two editors, interleaved in one run (round 1 reference, round 1
AssessIQ with the call, round 1 AssessIQ without it, round 2 reference, ...):

- the reference: Yjs + y-webrtc + CodeMirror 6 bound with y-codemirror.next (the npm package in
  bench/yjsref, installed with `npm ci` and bundled with esbuild into bench/yjsref/dist on first
  use) in two headless Chromium pages, with y-webrtc's own signaling server (node, its
  bin/server.js) on 127.0.0.1. Chromium 156 gathers no 127.0.0.1 WebRTC candidates, so the
  reference runs in a child process under `unshare -n` (root): a fresh network namespace with
  `lo` up and a veth pair whose two ends both stay inside it (10.77.0.1/24, 10.77.0.2/24; a
  default route onto one end, without which Chromium gathers no candidates), mDNS candidate
  hiding off. Nothing can leave that namespace;
- AssessIQ: a host and a candidate app process, each with its own headless Chromium, joined as
  bench_ui does; with the call (synthetic camera, as bench_ui) and without it (`--camera none
  --microphone none` on both sides: no video, no sound, so no proctor frames).

Keystrokes are real key events (CDP `Input.dispatchKeyEvent`) on a wall-clock schedule: a burst
at 8 keys/s and a burst of 300 keys at 20 keys/s, each direction. The typing page stamps each
keydown, the other page stamps each new character when a MutationObserver on the editor's
`.cm-content` sees the DOM text grow (characters counted from the DOM, widgets such as remote
carets excluded, so the same code measures any CodeMirror editor); both stamps are
`performance.timeOrigin + performance.now()` on one machine. Reported: p50/p95/p99 per
direction, pooled over rounds, with AssessIQ/reference ratios; and backlog: the last key of
each 20 keys/s burst vs its first (medians over bursts).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Row, median, percentile

AREA = "typing"
ROOT = Path(__file__).resolve().parent.parent
REF_DIR = ROOT / "bench" / "yjsref"
DIST = REF_DIR / "dist"  # untracked: the esbuild bundle and its page
EDITOR = "[data-testid=editor] .cm-content"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
VETH = (("aiqref0", "10.77.0.1/24"), ("aiqref1", "10.77.0.2/24"))

_PAGE = """<!doctype html>
<meta charset="utf-8"><title>yjs reference</title><link rel="icon" href="data:,">
<style>body{margin:0} [data-testid=editor]{height:95vh}</style>
<div data-testid="editor"></div>
<script src="ref.js"></script>
"""

# The typing page: stamp every printable keydown (capture phase, before the editor sees it).
_SENDER_JS = """
const now = () => performance.timeOrigin + performance.now();
window.__typingSent = [];
if (!window.__typingListening) {
  window.__typingListening = true;
  document.addEventListener("keydown", (e) => {
    if (e.key.length === 1 && window.__typingSent) window.__typingSent.push(now());
  }, true);
}
"""

# The editor's DOM text without widgets (contenteditable=false: remote carets and their name
# labels, placeholders): `c` its length, `t` the text.
_WALK_JS = """
const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT,
  {acceptNode: (n) => n.nodeType === 1 && n.getAttribute("contenteditable") === "false"
    ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
let c = 0, t = "";
while (walker.nextNode()) {
  if (walker.currentNode.nodeType === 3) { c += walker.currentNode.data.length;
    if (wantText) t += walker.currentNode.data; }
}
"""
_TEXT_JS = ("const root = document.querySelector(arguments[0]); const wantText = true;"
            + _WALK_JS + "return t;")

# The other page: stamp every character the editor's DOM text gains. Text inside widgets
# is not counted (see _WALK_JS).
_RECEIVER_JS = ("const wantText = false;" + """
const now = () => performance.timeOrigin + performance.now();
const root = document.querySelector(arguments[0]);
const count = () => {
  WALK
  return c;
};
if (window.__typingObserver) window.__typingObserver.disconnect();
const st = {seen: [], last: count()};
window.__typingSeen = st;
window.__typingObserver = new MutationObserver(() => {
  const t = now();
  const c = count();
  if (c > st.last) { for (let i = st.last; i < c; i++) st.seen.push(t); }
  st.last = c;
});
window.__typingObserver.observe(root, {childList: true, subtree: true, characterData: true});
return st.last;
""").replace("WALK", _WALK_JS)


# ---- keystrokes and one burst --------------------------------------------------------------

def _key(driver: Any, key: str, code: str, vk: int, *, text: str = "", modifiers: int = 0
         ) -> None:
    down: dict[str, Any] = {"type": "keyDown" if text else "rawKeyDown", "key": key,
                            "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}
    if text:
        down.update(text=text, unmodifiedText=text)
    driver.execute_cdp_cmd("Input.dispatchKeyEvent", down)
    driver.execute_cdp_cmd("Input.dispatchKeyEvent", {
        "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk,
        "modifiers": modifiers})


def _focus_end(driver: Any) -> None:
    """Focus the editor and put the caret at the end of the document (Ctrl+End, a real key)."""
    driver.execute_script("document.querySelector(arguments[0]).focus();", EDITOR)
    _key(driver, "End", "End", 35, modifiers=2)


def burst(sender: Any, receiver: Any, n: int, rate: float) -> dict[str, Any]:
    """Type `n` letters at `rate` keys/s in `sender`; the latencies (ms) until each shows in
    `receiver`, and how late the schedule ran (the bench's own lag, ms)."""
    from browser_helpers import wait_for

    _focus_end(sender)
    time.sleep(0.3)
    sender.execute_script(_SENDER_JS)
    receiver.execute_script(_RECEIVER_JS, EDITOR)
    lag = []
    t0 = time.monotonic() + 0.1
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        lag.append((time.monotonic() - due) * 1000)
        ch = LETTERS[i % 26]
        _key(sender, ch, f"Key{ch.upper()}", ord(ch.upper()), text=ch)
    wait_for(lambda: len(receiver.execute_script("return window.__typingSeen.seen")) >= n,
             timeout=60 + n / rate * 4, what=f"{n} keystrokes rendered in the other browser")
    sent = sender.execute_script("return window.__typingSent")
    seen = receiver.execute_script("return window.__typingSeen.seen")
    if len(sent) != n or len(seen) != n:
        raise RuntimeError(f"{len(sent)} keydowns, {len(seen)} characters seen, {n} typed")
    return {"lat": [s - k for k, s in zip(sent, seen, strict=True)],
            "lag_p99": percentile(lag, 99)}


def _bursts(a: Any, b: Any, names: tuple[str, str], n8: int, n20: int
            ) -> dict[str, list[dict[str, Any]]]:
    """Both directions at 8 and 20 keys/s: {"<a>→<b> 8": [burst], ...}."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rate, n in ((8, n8), (20, n20)):
        for s, r, (sn, rn) in ((a, b, names), (b, a, names[::-1])):
            out.setdefault(f"{sn}→{rn} {rate}", []).append(burst(s, r, n, rate))
    return out


# ---- the reference, inside its own network namespace ---------------------------------------

def _ensure_reference() -> str | None:
    """Install and bundle bench/yjsref when missing; None (and why) when that is possible,
    else the reason it is not."""
    bundle, page = DIST / "ref.js", DIST / "index.html"
    sources = [REF_DIR / "entry.js", REF_DIR / "package-lock.json"]
    if bundle.exists() and page.exists() and all(
            bundle.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return None
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "no node/npm"
    if not (REF_DIR / "node_modules" / "y-webrtc" / "bin" / "server.js").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REF_DIR, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    DIST.mkdir(exist_ok=True)
    subprocess.run([str(REF_DIR / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle",
                    "--minify", "--platform=browser", "--format=iife",
                    f"--outfile={bundle}"], cwd=REF_DIR, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    page.write_text(_PAGE)
    return None


def _reference_round(n8: int, n20: int) -> dict[str, list[dict[str, Any]]]:
    """One reference round in a child process under `unshare -n`; its JSON result."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        raise RuntimeError("the reference needs root, unshare and ip (a network namespace)")
    proc = subprocess.run(
        ["unshare", "-n", "--", sys.executable, "-m", "bench.bench_typing", "--reference-child",
         json.dumps({"n8": n8, "n20": n20})],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"reference round failed: {proc.stderr[-2000:]}")
    result: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ref_chromium() -> contextlib.AbstractContextManager[Any]:
    """tests/browser_helpers.chromium with mDNS candidate hiding off (so the peer connection
    offers the veth addresses)."""
    from browser_helpers import chromium

    manager: contextlib.AbstractContextManager[Any] = chromium(
        flags=("--disable-features=WebRtcHideLocalIpsWithMdns",))
    return manager


def _reference_child(n8: int, n20: int) -> dict[str, list[dict[str, Any]]]:
    """Inside the fresh namespace: the veth pair, the signaling server, the page server, two
    Chromium pages on one room; both directions at both rates."""
    from browser_helpers import free_port, wait_for

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    ip("link", "set", "lo", "up")
    ip("link", "add", VETH[0][0], "type", "veth", "peer", "name", VETH[1][0])
    for dev, addr in VETH:
        ip("addr", "add", addr, "dev", dev)
        ip("link", "set", dev, "up")
    # Chromium offers host candidates only once it finds a default local address: a default
    # route onto one veth end (its peer end is in this same namespace, which does not forward).
    ip("route", "add", "default", "dev", VETH[0][0])
    sport = free_port()
    signaling = subprocess.Popen(
        ["node", "--import", str(REF_DIR / "loopback.mjs"),
         str(REF_DIR / "node_modules" / "y-webrtc" / "bin" / "server.js")],
        env={**os.environ, "PORT": str(sport)}, stdout=subprocess.DEVNULL)
    handler = functools.partial(_QuietHandler, directory=str(DIST))
    pages = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    try:
        from bench.bench_peer import _wait_port

        _wait_port(sport, None)
        url = (f"http://127.0.0.1:{pages.server_address[1]}/index.html?room=bench-{os.getpid()}"
               f"&signaling=ws://127.0.0.1:{sport}")
        with _ref_chromium() as a, _ref_chromium() as b:
            a.get(url + "&name=a")
            b.get(url + "&name=b")
            for d in (a, b):

                def synced(d: Any = d) -> Any:
                    return d.execute_script("return window.yjsref && window.yjsref.synced()")

                wait_for(synced, timeout=60, what="the reference pages connected peer to peer")
            return _bursts(a, b, ("a", "b"), n8, n20)
    finally:
        pages.shutdown()
        signaling.terminate()
        signaling.wait(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# ---- AssessIQ ------------------------------------------------------------------------------

def _assessiq_round(call: bool, n8: int, n20: int) -> dict[str, list[dict[str, Any]]]:
    """One AssessIQ round: host and candidate apps joined as bench_ui does, then the bursts."""
    from browser_helpers import App, chromium, open_interview, wait_for

    media = ["--camera", "synthetic"] if call else ["--camera", "none", "--microphone", "none"]
    data = Path(tempfile.mkdtemp(prefix="aiq-bench-typing-"))
    host = App(["host", *media], data)
    try:
        cand = App(["join", *media], data)
    except Exception:
        host.stop()
        raise
    try:
        with chromium() as hd, chromium() as cd:
            open_interview(hd, cd, host.url, cand.url)
            wait_for(lambda: hd.execute_script(_TEXT_JS, EDITOR)
                     and hd.execute_script(_TEXT_JS, EDITOR) == cd.execute_script(_TEXT_JS, EDITOR),
                     what="both editors showing the same code")
            time.sleep(2.0)  # let the call settle
            return _bursts(hd, cd, ("host", "candidate"), n8, n20)
    finally:
        host.stop()
        cand.stop()
        shutil.rmtree(data, ignore_errors=True)


# ---- the table -----------------------------------------------------------------------------

def _pool(rounds: list[dict[str, list[dict[str, Any]]]], key: str) -> list[dict[str, Any]]:
    return [b for r in rounds for b in r.get(key, [])]


def _lat(bursts: list[dict[str, Any]]) -> list[float]:
    return [x for b in bursts for x in b["lat"]]


def run(quick: bool) -> list[Row]:
    sys.path.insert(0, str(ROOT / "tests"))
    rounds = 2 if quick else 3
    n8, n20 = (24, 60) if quick else (60, 300)
    why_no_ref = _ensure_reference()
    if why_no_ref is None and (os.geteuid() != 0 or shutil.which("unshare") is None):
        why_no_ref = "not root (the reference needs a network namespace)"
    ref: list[dict[str, list[dict[str, Any]]]] = []
    aiq: dict[bool, list[dict[str, list[dict[str, Any]]]]] = {True: [], False: []}
    loads: list[float] = []
    for i in range(rounds):
        loads.append(os.getloadavg()[0])
        if why_no_ref is None:
            print(f"  round {i + 1}: reference", file=sys.stderr, flush=True)
            ref.append(_reference_round(n8, n20))
        for call in (True, False):
            print(f"  round {i + 1}: AssessIQ {'with' if call else 'without'} the call",
                  file=sys.stderr, flush=True)
            aiq[call].append(_assessiq_round(call, n8, n20))
            loads.append(os.getloadavg()[0])
    return _rows(ref, aiq, rounds, n8, n20, why_no_ref, loads)


def _rows(ref: list[dict[str, list[dict[str, Any]]]],
          aiq: dict[bool, list[dict[str, list[dict[str, Any]]]]], rounds: int, n8: int,
          n20: int, why_no_ref: str | None, loads: list[float]) -> list[Row]:
    rows: list[Row] = []
    base_note = (f"{rounds} rounds interleaved; {n8} keys at 8/s, {n20} at 20/s per burst "
                 "(schedule lag: how late the bench sent keys); 1-min load average "
                 f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores")
    if why_no_ref is not None:
        base_note += f"; reference skipped ({why_no_ref})"
    for rate in (8, 20):
        ref_bursts = _pool(ref, f"a→b {rate}") + _pool(ref, f"b→a {rate}")
        ref_lat = _lat(ref_bursts)
        ref_lag = max((b["lag_p99"] for b in ref_bursts), default=0.0)
        for p in (50, 95, 99):
            if ref_lat:
                rows.append(Row(AREA, f"reference (Yjs+y-webrtc), {rate} keys/s, p{p}",
                                percentile(ref_lat, p), "ms",
                                note=f"{len(ref_lat)} keys, both directions" + (
                                    f"; schedule lag p99 ≤ {ref_lag:.0f} ms" if p == 50
                                    else "")))
        for call in (True, False):
            for d in ("host→candidate", "candidate→host"):
                bursts = _pool(aiq[call], f"{d} {rate}")
                lat = _lat(bursts)
                lag = max((b["lag_p99"] for b in bursts), default=0.0)
                for p in (50, 95, 99):
                    goal = ""
                    if call and rate == 20:
                        goal = {95: "≤ 1.5× reference", 99: "≤ 2× reference"}.get(p, "")
                    rows.append(Row(
                        AREA, f"AssessIQ {'with' if call else 'without'} call, {d}, "
                              f"{rate} keys/s, p{p}",
                        percentile(lat, p), "ms",
                        baseline=percentile(ref_lat, p) if ref_lat else None,
                        baseline_name="reference", goal=goal,
                        note=f"{len(lat)} keys" + (
                            f"; schedule lag p99 ≤ {lag:.0f} ms" if p == 50 else "")))
    backlog = [("reference, both directions",
                _pool(ref, "a→b 20") + _pool(ref, "b→a 20"), "")]
    for call in (True, False):
        for d in ("host→candidate", "candidate→host"):
            backlog.append((f"AssessIQ {'with' if call else 'without'} call, {d}",
                            _pool(aiq[call], f"{d} 20"), "≤ 2×" if call else ""))
    for name, bursts, goal in backlog:
        if not bursts:
            continue
        first = median([b["lat"][0] for b in bursts])
        last = median([b["lat"][-1] for b in bursts])
        head = median([median(b["lat"][:10]) for b in bursts])
        tail = median([median(b["lat"][-10:]) for b in bursts])
        rows.append(Row(AREA, f"backlog at 20 keys/s: last key of {n20}, {name}", last, "ms",
                        baseline=first, baseline_name="first key", goal=goal,
                        note=f"medians over {len(bursts)} bursts; first 10 keys' median "
                             f"{head:.1f} ms, last 10 keys' {tail:.1f} ms"))
    rows[0].note += "; " + base_note
    return rows


def _child_main() -> int:
    args = json.loads(sys.argv[2])
    sys.path.insert(0, str(ROOT / "tests"))
    print(json.dumps(_reference_child(args["n8"], args["n20"])), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--reference-child":
        sys.exit(_child_main())
    sys.exit("usage: python -m bench --only typing [--quick]")
