"""Run in a child process whose HOME holds an ~/.asoundrc with two ALSA "file" devices:
`aiqmic` (a microphone that reads a raw tone file) and `aiqsink` (an output that writes what
PortAudio plays into a raw file). The call picks the microphone by name on one side and plays
the received audio on `aiqsink` on the other; prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from assessiq.media import SYNTHETIC, MediaConfig
from assessiq.media.loopback import connect_pair
from assessiq.media.sinks import dominant_frequency


async def main(seconds: float) -> dict[str, object]:
    talker = MediaConfig(camera=SYNTHETIC, microphone="aiqmic", speaker=None, fps=10)
    listener = MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker="aiqsink", fps=10,
                           keep_audio_seconds=1.0)
    (pa, a), (pb, b) = await connect_pair(talker, listener)
    try:
        deadline = time.monotonic() + 20
        while len(b.remote_audio.recent()) < 48000:
            if time.monotonic() > deadline:
                raise TimeoutError("no audio from the selected microphone")
            await asyncio.sleep(0.05)
        await asyncio.sleep(seconds)
        player = b.remote_audio.player
        return {
            "talker_problems": a.problems, "listener_problems": b.problems,
            "has_microphone": a.has_microphone, "player_open": player is not None,
            "player_dropped": player.dropped if player is not None else None,
            "received_hz": dominant_frequency(b.remote_audio.recent()),
        }
    finally:
        await a.close()
        await b.close()  # closes the player: everything fed has been handed to PortAudio
        await pa.close()
        await pb.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(float(sys.argv[1])))), flush=True)
