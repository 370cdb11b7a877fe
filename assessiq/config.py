"""The app's configuration: one TOML file in the platform's user config dir.

    ~/.config/assessiq/config.toml   (Linux; `assessiq config path` prints it on any OS)

Every key is optional; command-line flags win over the file. `assessiq config init` writes a
commented example. `$ASSESSIQ_CONFIG` names another file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .core.errors import AssessIQError

__all__ = ["EXAMPLE", "AppConfig", "ConfigError", "IceServerEntry", "config_path", "load_config"]

ENV_CONFIG = "ASSESSIQ_CONFIG"

EXAMPLE = """\
# AssessIQ configuration. Every key is optional; command-line flags win.

[signaling]
# The signaling server `assessiq host` uses when --signaling and --lan are not given.
# url = "wss://signal.example.org/ws"

[ice]
# STUN/TURN servers for the peer connection. None are contacted unless listed here
# (AssessIQ never falls back to a public STUN server).
# servers = [
#   { url = "stun:stun.example.org:3478" },
#   { url = "turn:turn.example.org:3478", username = "me", credential = "secret" },
# ]
# The interviewer's app passes servers without a credential (STUN) to the candidate, but a
# TURN password only with share = true on that server (the candidate would hold it).
# Send everything through TURN (hides both sides' addresses from each other):
# relay_only = false

[sandbox]
# Where candidates' code runs: "local" (bubblewrap, the default on Linux) or "piston".
# backend = "local"
# piston_url = "http://127.0.0.1:2000"
# With backend = "piston": start (or reuse) a local Piston container with Docker when the
# host starts, and install a language's runtime on its first run (piston_url on 127.0.0.1).
# launch = false

[policy]
# An integrity policy file to use instead of the built-in defaults
# (see assessiq/core/default_policy.toml for every key and the reason for its default).
# file = "/path/to/policy.toml"
"""


class ConfigError(AssessIQError):
    """The configuration file is malformed; the message names the key."""


@dataclass(frozen=True)
class IceServerEntry:
    url: str
    username: str | None = None
    credential: str | None = None
    share: bool = False  # the host may pass it, credential included, to the candidate


@dataclass(frozen=True)
class AppConfig:
    signaling_url: str | None = None
    ice_servers: tuple[IceServerEntry, ...] = field(default_factory=tuple)
    relay_only: bool = False
    sandbox_backend: str = "local"
    piston_url: str = "http://127.0.0.1:2000"
    piston_launch: bool = False
    policy_file: Path | None = None
    source: Path | None = None  # the file it came from, if any

    def sandbox_backend_instance(self, progress: Callable[[str], None] | None = None) -> Any:
        """The sandbox backend this configuration names (None: the default local one).
        `progress` gets a launched Piston's steps (image pull, start, installs) as lines;
        without it they go to the log."""
        if self.sandbox_backend == "piston" and self.piston_launch:
            from sandbox.piston_launched import LaunchedPistonBackend
            from sandbox.piston_launcher import PistonLauncher

            return LaunchedPistonBackend(PistonLauncher.for_url(self.piston_url),
                                         progress=progress)
        if self.sandbox_backend == "piston":
            from sandbox.piston import PistonBackend

            return PistonBackend(self.piston_url)
        return None

    def peer_config(self) -> Any:
        """The `assessiq.peer.PeerConfig` this configuration describes."""
        from .peer.config import IceServer, PeerConfig

        try:
            servers = tuple(IceServer(s.url, s.username, s.credential, s.share)
                            for s in self.ice_servers)
            return PeerConfig(ice_servers=servers, relay_only=self.relay_only)
        except ValueError as exc:
            raise ConfigError(f"{self.source or 'config'}: [ice] {exc}") from exc


def config_path() -> Path:
    override = os.environ.get(ENV_CONFIG)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("assessiq", "AssessIQ")) / "config.toml"


def _get(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if value is not None and (not isinstance(value, kind) or
                              (kind is not bool and isinstance(value, bool))):
        raise ConfigError(f"{where}: {key} must be a {kind.__name__}")
    return value


def load_config(path: Path | None = None) -> AppConfig:
    """Read the configuration (a missing file means all defaults)."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AppConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    tables = {}
    for name in ("signaling", "ice", "sandbox", "policy"):
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        tables[name] = table
    unknown = set(data) - set(tables)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")

    url = _get(tables["signaling"], "url", str, f"{path} [signaling]")
    if url is not None and not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"{path} [signaling]: url must start with ws:// or wss://")
    servers = []
    raw_servers = tables["ice"].get("servers", [])
    if not isinstance(raw_servers, list):
        raise ConfigError(f"{path} [ice]: servers must be a list of tables")
    for i, entry in enumerate(raw_servers):
        where = f"{path} [ice] servers[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{where}: each server needs a url")
        servers.append(IceServerEntry(entry["url"], _get(entry, "username", str, where),
                                      _get(entry, "credential", str, where),
                                      bool(_get(entry, "share", bool, where))))
    backend = _get(tables["sandbox"], "backend", str, f"{path} [sandbox]") or "local"
    if backend not in ("local", "piston"):
        raise ConfigError(f"{path} [sandbox]: backend must be \"local\" or \"piston\"")
    piston_url = _get(tables["sandbox"], "piston_url", str, f"{path} [sandbox]") \
        or AppConfig.piston_url
    launch = bool(_get(tables["sandbox"], "launch", bool, f"{path} [sandbox]"))
    from sandbox.errors import InvalidRequestError
    from sandbox.piston import check_piston_url

    try:
        check_piston_url(piston_url)
    except InvalidRequestError as exc:
        raise ConfigError(f"{path} [sandbox]: piston_url: {exc}") from exc
    if launch:
        from sandbox.piston_launcher import PistonLauncher

        if backend != "piston":
            raise ConfigError(f"{path} [sandbox]: launch = true needs backend = \"piston\"")
        try:
            PistonLauncher.for_url(piston_url)
        except InvalidRequestError as exc:
            raise ConfigError(f"{path} [sandbox]: piston_url: {exc}") from exc
    policy = _get(tables["policy"], "file", str, f"{path} [policy]")
    config = AppConfig(
        signaling_url=url,
        ice_servers=tuple(servers),
        relay_only=bool(_get(tables["ice"], "relay_only", bool, f"{path} [ice]")),
        sandbox_backend=backend,
        piston_url=piston_url,
        piston_launch=launch,
        policy_file=Path(policy).expanduser() if policy else None,
        source=path,
    )
    config.peer_config()  # validate the ICE part now, with the file's name in the message
    return config
