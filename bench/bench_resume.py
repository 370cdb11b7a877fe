"""Resume: the host's app SIGKILLed and started again — how long until both sides sync again.

Real processes on loopback (`tests/resume_helpers.py`: a host and a candidate child, the app's
own peer configuration), a real signaling server in this process. Both type for a moment; then,
per run, the host is SIGKILLed and a new host process resumes the session file
(`Host.resume`). Times are taken in this process as the children's lines arrive:

- *spawn → app up*: the new process starting to `Host.resume` having returned (interpreter,
  imports, reopening and re-verifying the file, the signaling room joined);
- *app up → both synced*: from there to both sides' document sync having run its first
  exchange over the new link (the candidate's app reconnects by itself) — the issue's goal,
  ≤ 3 s on loopback;
- *spawn → both synced*: the whole restart.

"after the candidate noticed": the restart begins once the candidate's app has seen the link
die (its heartbeat timeout, 5 s by default). "at once": the new process starts right after the
kill, while the candidate still holds the dead link.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import Row, median

AREA = "resume"


async def _restart(url: str, host_path: Path, data: Path, cand: object, *,
                   wait_for_notice: bool) -> tuple[float, float, float]:
    from tests.resume_helpers import Child

    assert isinstance(cand, Child)
    if wait_for_notice:
        await cand.expect("link", up=False, timeout=30)
    t0 = time.monotonic()
    host = await Child.start("host", "--path", str(host_path), "--resume", "--config",
                             "default", data_dir=data)
    ready = await host.expect("ready", timeout=60)
    h = await host.expect("link", up=True, timeout=60)
    c = await cand.expect("link", up=True, timeout=60)
    synced = max(h["at"], c["at"])
    await host.send("type", gen=1, every=0.05)
    await asyncio.sleep(0.2)
    await host.kill()
    return ready["at"] - t0, synced - ready["at"], synced - t0


async def _measure(runs: int) -> dict[str, list[tuple[float, float, float]]]:
    from assessiq.peer.connection import restrict_host_addresses
    from signaling import ServerConfig, SignalingServer
    from tests.resume_helpers import Child

    restrict_host_addresses(["127.0.0.1"])
    out: dict[str, list[tuple[float, float, float]]] = {"noticed": [], "at once": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        host_data, cand_data = folder / "host", folder / "cand"
        host_data.mkdir()
        path = host_data / "resume.aiq"
        async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
            url = f"ws://127.0.0.1:{server.port}"
            host = await Child.start("host", "--signaling", url, "--path", str(path),
                                     "--config", "default", data_dir=host_data)
            cand = None
            try:
                invite = (await host.expect("ready", timeout=60))["invite"]
                cand = await Child.start("candidate", "--invite", invite, "--config",
                                         "default", data_dir=cand_data)
                await cand.expect("link", up=True, timeout=60)
                await cand.send("type", gen=0, every=0.05)
                await host.send("type", gen=0, every=0.05)
                await asyncio.sleep(0.5)
                await host.kill()
                for i in range(2 * runs):
                    key = "noticed" if i % 2 == 0 else "at once"
                    out[key].append(await _restart(url, path, host_data, cand,
                                                   wait_for_notice=key == "noticed"))
            finally:
                await host.kill()
                if cand is not None:
                    await cand.kill()
    return out


def run(quick: bool = False) -> list[Row]:
    results = asyncio.run(_measure(2 if quick else 5))
    rows: list[Row] = []
    for key, label in (("noticed", "after the candidate noticed"), ("at once", "at once")):
        times = results[key]
        n = len(times)
        up, synced, whole = (median([t[i] for t in times]) for i in range(3))
        rows += [
            Row(AREA, f"host restart {label}: spawn → app up", up, "s",
                note=f"median of {n}; Host.resume returned (default PeerConfig)"),
            Row(AREA, f"host restart {label}: app up → both synced", synced, "s",
                goal="≤ 3 s", note=f"median of {n}, max {max(t[1] for t in times):.2f} s; "
                                    "the candidate's app reconnects by itself"),
            Row(AREA, f"host restart {label}: spawn → both synced", whole, "s",
                note=f"median of {n}"),
        ]
    return rows
