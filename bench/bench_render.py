"""The call's video in a real page: frames shown per second and capture→displayed latency.

A server process (`python -m bench.bench_render serve`) runs the app's real video route and
tile (NiceGUI, `video.js`) and, in the same process, a call on 127.0.0.1: one side sends the
stamped synthetic camera (640×480, frame counter and capture time in the pixels) over VP8,
the other shows what it decodes in the tile, scaled to 320 px as the apps do. Headless
Chromium opens the page; a probe in the page decodes the stamp from every frame the tile
shows (canvas, after the next animation frame) and keeps the counter and
`Date.now() - capture time`. Both renderers — the websocket push and the frame-endpoint
polling — run alternately against the same server, so they share the same conditions.
The server's CPU (utime+stime from /proc) is measured over each window.

    python -m bench --only render
    python -m bench.bench_render serve --port 8799 --fps 30    # prints the page's URL
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Row, median, percentile

AREA = "render"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MODES = ("ws", "poll")

# Decodes the stamp (assessiq/media/stamp.py: 2 rows × 40 blocks along the top, bits MSB
# first: 24-bit counter, 48-bit ms, CRC-8 poly 0x07 init 0xFF) from each frame the tile shows.
PROBE_JS = r"""
(function () {
  const img = document.querySelector("img[data-aiq-video]");
  if (!img) return false;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const shown = [];
  let unreadable = 0;
  function crc8(value, nbits) {
    let crc = 0xFF;
    for (let i = nbits - 1; i >= 0; i--) {
      const bit = Number((value >> BigInt(i)) & 1n), top = (crc >> 7) & 1;
      crc = (crc << 1) & 0xFF;
      if (top ^ bit) crc ^= 0x07;
    }
    return crc;
  }
  function read() {
    const w = img.naturalWidth, h = img.naturalHeight, b = w / 40;
    if (!w || h < 2 * b) return null;
    canvas.width = w; canvas.height = Math.ceil(2 * b);
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, w, canvas.height).data;
    let word = 0n;
    for (let row = 0; row < 2; row++) {
      for (let col = 0; col < 40; col++) {
        let sum = 0, n = 0;
        for (let y = Math.floor(row * b + b / 4); y < Math.ceil(row * b + 3 * b / 4); y++) {
          for (let x = Math.floor(col * b + b / 4); x < Math.ceil(col * b + 3 * b / 4); x++) {
            sum += px[(y * w + x) * 4 + 1]; n++;
          }
        }
        const v = sum / n;
        if (Math.abs(v - 128) < 52) return null;
        word = (word << 1n) | (v > 128 ? 1n : 0n);
      }
    }
    const payload = word >> 8n, crc = Number(word & 0xFFn);
    if (crc8(payload, 72) !== crc) return null;
    return { counter: Number(payload >> 48n), t_ms: Number(payload & ((1n << 48n) - 1n)) };
  }
  img.addEventListener("load", () => requestAnimationFrame(() => {
    const now = Date.now(), stamp = read();
    if (!window.aiqProbe.on) return;
    if (stamp === null) { unreadable++; return; }
    shown.push([stamp.counter, now - stamp.t_ms, performance.now()]);
  }));
  window.aiqProbe = { on: false, shown: shown, unreadable: () => unreadable,
                      reset: () => { shown.length = 0; unreadable = 0; } };
  return true;
})();
"""


# -- the server ----------------------------------------------------------------------------

def serve(port: int, fps: int) -> int:
    """The app's video route and tile, fed by a call on 127.0.0.1 in this process."""
    from nicegui import ui

    from assessiq.media import SYNTHETIC, MediaConfig, MediaSession
    from assessiq.media.loopback import connect_pair
    from assessiq.room.call import JPEG_WIDTH
    from assessiq.ui.app import AppState
    from assessiq.ui.app import serve as serve_app

    state = AppState()
    media: list[MediaSession] = []

    def remote() -> bytes | None:
        return media[1].remote_jpeg() if media else None

    @ui.page(f"/{state.token}/render")
    def page() -> None:
        state.tile("Remote", "remote", remote)

    async def prepare() -> None:
        sender = MediaConfig(camera=SYNTHETIC, microphone=None, speaker=None, fps=fps)
        shower = MediaConfig(camera=None, microphone=None, speaker=None, fps=fps,
                             jpeg_max_width=JPEG_WIDTH)
        (_, a), (_, b) = await connect_pair(sender, shower)
        media.extend((a, b))

    serve_app(state, (), port=port, start_path="render", open_browser=False,
              title="render bench", prepare=prepare)
    return 0


# -- the measurement -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`serve` in a child process; `url` once it is listening."""

    def __init__(self, fps: int) -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_render", "serve", "--port", str(port),
             "--fps", str(fps)],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
            cwd=Path(__file__).resolve().parent.parent)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline and not self.url:
            line = self.proc.stdout.readline()
            if not line:
                break
            if ": open http" in line:
                self.url = line.split(": open ", 1)[1].strip()
        if not self.url:
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"render server did not start: {self.log.read()[-1500:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def chromium() -> tuple[Any, str]:
    """A headless Chromium with a fresh profile (its folder: remove it after quitting)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="aiq-render-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=800,600"):
        options.add_argument(flag)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver, profile


def close_chromium(driver: Any, profile: str) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def measure(driver: Any, server: Server, mode: str, *, warmup: float,
            seconds: float) -> dict[str, Any]:
    """Open the tile with `mode` and return what the page showed over `seconds`."""
    driver.get(f"{server.url}?aiq_render={mode}")
    deadline = time.monotonic() + 30
    while not driver.execute_script("return !!document.querySelector('img[data-aiq-video]')"):
        if time.monotonic() > deadline:
            raise RuntimeError("the video tile did not appear")
        time.sleep(0.1)
    if not driver.execute_script("return " + PROBE_JS.strip().rstrip(";")):
        raise RuntimeError("the probe found no video tile")
    driver.execute_script("window.aiqProbe.on = true;")
    deadline = time.monotonic() + 30
    while not driver.execute_script("return window.aiqProbe.shown.length"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no stamped frame was shown ({mode})")
        time.sleep(0.1)
    time.sleep(warmup)
    driver.execute_script("window.aiqProbe.reset();")
    cpu0, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(seconds)
    shown, unreadable = driver.execute_script(
        "return [window.aiqProbe.shown.slice(), window.aiqProbe.unreadable()];")
    wall = time.monotonic() - t0
    cpu = _cpu_seconds(server.proc.pid) - cpu0
    counters = [int(s[0]) for s in shown]
    latencies = [float(s[1]) for s in shown]
    span_s = (shown[-1][2] - shown[0][2]) / 1000 if len(shown) > 1 else 0.0
    return {
        "mode": mode, "shown": len(shown), "unreadable": int(unreadable),
        "distinct": len(set(counters)),
        "in_order": all(b >= a for a, b in itertools.pairwise(counters)),
        "fps": (len(set(counters)) - 1) / span_s if span_s > 0 else 0.0,
        "latency_ms_p50": median(latencies) if latencies else float("nan"),
        "latency_ms_p95": percentile(latencies, 95),
        "server_cpu_percent": 100 * cpu / wall,
    }


def run(quick: bool) -> list[Row]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return [Row(AREA, "skipped: needs chromium and chromium-driver", 0, "")]
    reps, seconds = (1, 4.0) if quick else (3, 8.0)
    rows: list[Row] = []
    for fps in ((30,) if quick else (30, 10)):
        server = Server(fps)
        driver, profile = chromium()
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        try:
            for _ in range(reps):
                for mode in MODES:
                    results[mode].append(measure(driver, server, mode, warmup=1.5,
                                                 seconds=seconds))
        finally:
            close_chromium(driver, profile)
            server.stop()

        def med(mode: str, key: str, results: dict[str, list[dict[str, Any]]] = results
                ) -> float:
            return median([r[key] for r in results[mode]])

        note = (f"{reps} run(s) × {seconds:.0f} s, medians; VP8 640×480@{fps} on loopback, "
                f"tile JPEG 320 px; stamps read in the page")
        base = "frame-endpoint polling (≤ 30 requests/s)"
        rows += [
            Row(AREA, f"frames shown per second, websocket push ({fps} fps sent)",
                med("ws", "fps"), "fps", med("poll", "fps"), base, f"{fps}", note),
            Row(AREA, f"capture→displayed latency p50, websocket ({fps} fps sent)",
                med("ws", "latency_ms_p50"), "ms", med("poll", "latency_ms_p50"), base,
                "≤ 100", "includes VP8 encode/decode and the JPEG"),
            Row(AREA, f"capture→displayed latency p95, websocket ({fps} fps sent)",
                med("ws", "latency_ms_p95"), "ms", med("poll", "latency_ms_p95"), base, "", ""),
            Row(AREA, f"server process CPU, websocket ({fps} fps sent)",
                med("ws", "server_cpu_percent"), "% of a core",
                med("poll", "server_cpu_percent"), base, "",
                "the call's both sides + NiceGUI + JPEG, one process"),
        ]
        for mode in MODES:
            for r in results[mode]:
                print(f"[render] {fps} fps {json.dumps(r)}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_render", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="the video tile fed by a loopback call")
    s.add_argument("--port", type=int, default=8799)
    s.add_argument("--fps", type=int, default=30)
    m = sub.add_parser("measure", help="print what the page shows, per renderer, as JSON")
    m.add_argument("--fps", type=int, default=30)
    m.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args(argv)
    if args.command == "serve":
        return serve(args.port, args.fps)
    server = Server(args.fps)
    driver, profile = chromium()
    try:
        for mode in MODES:
            print(json.dumps(measure(driver, server, mode, warmup=1.0, seconds=args.seconds)))
    finally:
        close_chromium(driver, profile)
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
