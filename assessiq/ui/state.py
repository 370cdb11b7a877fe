"""What one app process holds (`AppState`) and the secret every page checks (`check_token`):
the pages import these, and `app` imports the pages, so this module imports no page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from ..config import AppConfig
from ..peer import PeerConfig
from ..room.call import CallPlan
from ..room.candidate import CandidateController
from ..room.host import HostController
from ..room.problems import Problem
from .components import FrameSource, video_tile

__all__ = ["AppState", "check_token"]


@dataclass
class AppState:
    """Everything one app process holds. Host, candidate and replay pages use parts of it."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # host
    host: HostController | None = None
    problem_file: Problem | None = None  # a problem loaded with --problem
    signaling: str | None = None
    lan: bool = False
    lan_address: str = "127.0.0.1"
    # candidate
    candidate: CandidateController | None = None
    invite_text: str | None = None
    name: str | None = None
    # replay
    replay_path: Path | None = None
    # the call: media settings per role ("host", "candidate"; None: decided at start)
    calls: dict[str, CallPlan] = field(default_factory=dict)
    # video frames served at /<token>/video/<name>: the newest JPEG of each tile
    videos: dict[str, FrameSource] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # the TOML configuration (`assessiq config`): ICE servers, sandbox backend, policy file
    app_config: AppConfig = field(default_factory=AppConfig)

    def peer_config(self) -> PeerConfig:
        config: PeerConfig = self.app_config.peer_config()
        return config

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}/{self.token}/{path.lstrip('/')}"

    def tile(self, title: str, name: str, source: FrameSource) -> None:
        """A video tile showing the frames of `source`, served as `name`."""
        self.videos[name] = source
        video_tile(title, f"/{self.token}/video/{name}")


def check_token(state: AppState, token: str) -> None:
    """404 unless `token` is this run's secret (compared in constant time)."""
    if not secrets.compare_digest(token.encode(), state.token.encode()):
        raise HTTPException(status_code=404, detail="Not Found")
