"""`assessiq config path|show|init`: where the configuration lives and what it says."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from ..config import EXAMPLE, config_path, load_config


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "config", help="show or create the configuration file (TOML)",
        description="The configuration file holds the default signaling server, STUN/TURN "
                    "servers, the sandbox backend and the policy file. Flags win over it.")
    p.add_argument("action", choices=["path", "show", "init"],
                   help="path: print where it is; show: print the effective settings; "
                        "init: write a commented example (never overwrites)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = config_path()
    if args.action == "path":
        print(path)
        return 0
    if args.action == "init":
        if path.exists():
            print(f"assessiq config: {path} already exists; not overwriting it", file=sys.stderr)
            return 2
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(EXAMPLE, encoding="utf-8")
        print(f"wrote {path}")
        return 0
    config = load_config(path)
    shown = asdict(config)
    for server in shown["ice_servers"]:
        if server.get("credential"):
            server["credential"] = "***"
    print(json.dumps(shown, indent=2, default=str))
    return 0
