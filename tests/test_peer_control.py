"""The control channel's schema: what passes, and that everything else is refused."""

from __future__ import annotations

import pytest

from assessiq.peer import control


def test_valid_messages_round_trip():
    assert control.decode(control.encode("ping", id=3, at=1.5)) == {"t": "ping", "id": 3, "at": 1.5}
    assert control.decode(b'{"t":"bye","reason":"done"}')["reason"] == "done"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"[1,2]",
        b'{"t":"nope"}',
        b'{"t":"ping","id":"1","at":1}',
        b'{"t":"ping","id":true,"at":1}',
        b'{"t":"ping","id":1}',
        b'{"t":"ping","id":1,"at":1,"extra":0}',
        b'{"t":"bye","reason":null}',
        b"[" * 5000,
        b'{"t":"bye","reason":"' + b"x" * 5000 + b'"}',
    ],
)
def test_malformed_messages_are_refused(raw):
    with pytest.raises(control.ControlError):
        control.decode(raw)


def test_register_new_type():
    control.register("test.thing", {"n": int})
    assert control.decode(b'{"t":"test.thing","n":1}')["n"] == 1
    with pytest.raises(ValueError):
        control.register("test.thing", {"n": str})
