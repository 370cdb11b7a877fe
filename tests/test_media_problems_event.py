"""A device problem found while the call attaches (a camera that cannot be opened) reaches the
page as a change event (`CallState.on_change` → the controller's "call" topic), so the
interviewer's and the candidate's call controls redraw without polling."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from assessiq.media import MediaConfig
from assessiq.peer.call import CallState


async def test_a_device_problem_is_told_once_found() -> None:
    told: list[str] = []
    state = CallState(MediaConfig(camera="/dev/assessiq-no-such-camera", microphone=None,
                                  speaker=None), on_change=lambda: told.append("call"))
    pc = RTCPeerConnection()
    try:
        media = state.attach(pc)
        assert media.problems and "camera" in media.problems[0].lower()
        assert told == ["call"]
        media._problem("the speaker went away")  # a later problem: told again
        assert told == ["call", "call"]
    finally:
        await pc.close()


async def test_no_problem_no_news() -> None:
    told: list[str] = []
    state = CallState(MediaConfig(camera=None, microphone=None, speaker=None),
                      on_change=lambda: told.append("call"))
    pc = RTCPeerConnection()
    try:
        media = state.attach(pc)
        assert media.problems == [] and told == []
    finally:
        await pc.close()
