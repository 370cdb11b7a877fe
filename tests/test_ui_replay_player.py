"""The replay's player clock: play, speeds, skipping idle stretches, stepping between events."""

from __future__ import annotations

import pytest

from assessiq.room.replay_player import IDLE_S, Player


def _play_to_end(player: Player, step: float = 0.1, limit: int = 100_000) -> list[float]:
    seen = []
    player.play()
    for _ in range(limit):
        if not player.playing:
            break
        player.advance(step)
        seen.append(player.t)
    return seen


def test_play_runs_at_its_speed_and_stops_at_the_end() -> None:
    player = Player(span=60.0, moments=[1.0, 30.0], marks=[30.0], t=0.0)
    player.play()
    player.advance(1.0)
    assert player.t == pytest.approx(1.0)
    player.set_speed("10×")
    player.advance(1.0)
    assert player.t == pytest.approx(11.0)
    seen = _play_to_end(player)
    assert player.t == 60.0 and not player.playing
    assert len(seen) == pytest.approx(49 / 10 / 0.1, abs=2)  # 49 s more at 10×: ~4.9 s


def test_play_at_the_end_starts_over_and_pause_holds() -> None:
    player = Player(span=10.0, moments=[], marks=[], t=10.0)
    player.toggle()
    assert player.playing and player.t == 0.0
    player.advance(2.0)
    player.toggle()
    player.advance(5.0)
    assert not player.playing and player.t == pytest.approx(2.0)


def test_skip_idle_jumps_long_silences_and_keeps_busy_stretches() -> None:
    typing = [100.0 + 0.2 * i for i in range(50)]  # 10 s of typing after 100 s of nothing
    player = Player(span=200.0, moments=typing, marks=[], t=0.0)
    player.set_speed("skip idle")
    player.play()
    player.advance(0.1)
    assert player.t == pytest.approx(99.5)  # straight to just before the typing
    times = _play_to_end(player)
    during = [t for t in times if 100.0 <= t <= 110.0]
    assert len(during) >= 9  # the typing itself plays at 10×, not skipped
    after = [t for t in times if t > 111.0]
    assert after and after[0] == pytest.approx(200.0 - 0.5)  # the idle tail too
    assert player.t == 200.0


def test_a_silence_shorter_than_the_idle_bound_is_played() -> None:
    player = Player(span=20.0, moments=[5.0, 5.0 + IDLE_S - 0.5], marks=[], t=5.0)
    player.set_speed("skip idle")
    player.play()
    player.advance(0.1)
    assert player.t == pytest.approx(6.0)


def test_next_and_previous_event() -> None:
    player = Player(span=50.0, moments=[], marks=[10.0, 20.0, 20.0, 40.0], t=0.0)
    stops = []
    for _ in range(5):
        player.next_mark()
        stops.append(player.t)
    assert stops == [10.0, 20.0, 40.0, 50.0, 50.0]
    backs = []
    for _ in range(5):
        player.previous_mark()
        backs.append(player.t)
    assert backs == [40.0, 20.0, 10.0, 0.0, 0.0]


def test_an_unknown_speed_is_refused_and_changes_nothing() -> None:
    player = Player(span=5.0, moments=[], marks=[])
    with pytest.raises(ValueError, match="unknown speed"):
        player.set_speed("1000×")
    assert player.speed == "1×"
