"""A small Internet in network namespaces: a public network with the signaling server and coturn,
and interviewers and candidates behind NAT routers of different kinds (root only).

    public 203.0.113.0/24 (a bridge in the `pub` namespace; TEST-NET-3, so coturn's shipped
    denied-peer-ip list does not apply to it)
      ├── 203.0.113.1   signaling server + coturn, with the shipped deploy/ files (rendered)
      ├── host "none"   203.0.113.10              (no NAT)
      ├── router → LAN 192.168.11.0/24: host "masquerade" (.2), candidate "hairpin" (.3)
      ├── router → LAN 192.168.12.0/24: host "symmetric"
      ├── cand "none"   203.0.113.20
      ├── router → LAN 192.168.21.0/24: candidate "masquerade"
      └── router → LAN 192.168.22.0/24: candidate "symmetric"

NAT kinds (iptables in the router's namespace, on its WAN side):
- `masquerade`: `-j MASQUERADE`. Linux keeps the source port when it can, so the mapping is
  endpoint-independent; conntrack lets in only replies from the exact address and port a
  packet went to (address-and-port-dependent filtering): a "port-restricted cone". Every
  router also drops what arrives unsolicited on its WAN side, as home routers do.
- `symmetric`: `-j MASQUERADE --random-fully`: a new random port for every destination, so
  the address STUN saw is not the one the peer sees.
- `hairpin`: the candidate sits on the same LAN as the "masquerade" host, behind the same
  router.

Every address exists only inside namespaces made here; nothing is routed to or from the
machine's own namespaces, so the traffic never leaves them. `Lab.destroy()` kills whatever
still runs in them and deletes them all (deleting a namespace deletes its interfaces and
rules). A namespace's name carries the pid of the process that made it
(`aiq-<name>-<pid>-<hex>`): after a hard kill, the next `build_lab()` removes the labs whose
maker is gone (`remove_stale_labs`), and the services (coturn, the signaling server) are
started to die with their parent (`die_with_parent`), so nothing outlives a killed run.

The peers run in this process: `in_netns(ns, fn)` runs `fn` in a fresh thread that has
joined the namespace (setns on a thread affects only it), so sockets it opens — the event
loop's, aiortc's, aioice's — live there. aioice's host-address lookup is replaced while the
lab runs so a thread offers its own namespace's address (`peer_addresses`).
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
PUBLIC_NET = "203.0.113"
SERVICES_IP = f"{PUBLIC_NET}.1"
NAT_KINDS = ("none", "masquerade", "symmetric")
SIGNALING_PORT = 8765  # as in deploy/signaling.toml
TURN_PORT = 3478  # as in deploy/turnserver.conf


def missing_prerequisite() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns) and NAT rules"
    for tool in ("ip", "iptables", "turnserver"):
        if shutil.which(tool) is None:
            return f"needs the `{tool}` tool (apt-get install iproute2 iptables coturn)"
    return None


def die_with_parent(cmd: list[str]) -> list[str]:
    """`cmd`, run so that the kernel kills it when the thread that started it exits
    (`setpriv --pdeathsig KILL`, when util-linux's setpriv is there)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


STALE_NAME = re.compile(r"^aiq-[a-z0-9]+-(\d+)-[0-9a-f]+$")


def _kill_netns_processes(ns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                         timeout=30).stdout
    for pid in out.split():
        with suppress(ProcessLookupError, ValueError):
            if int(pid) != os.getpid():  # our own threads may sit in a lab namespace
                os.kill(int(pid), signal.SIGKILL)


def remove_stale_labs() -> list[str]:
    """Delete the lab namespaces whose maker (the pid in the name) is no longer running,
    killing what still runs in them; the names deleted."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    removed = []
    for ns in sorted(names):
        match = STALE_NAME.match(ns)
        if match is None:
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # its maker is alive (or the pid was reused: then it is left alone)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _kill_netns_processes(ns)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        removed.append(ns)
    return removed


def sh(*args: str) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Position:
    """Where a peer sits: its namespace, its own address and what is in front of it."""

    role: str  # "host" or "candidate"
    kind: str  # "none", "masquerade", "symmetric", or "hairpin" (candidate only)
    ns: str
    address: str


@dataclass
class Lab:
    tag: str
    pub: str
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, Position] = field(default_factory=dict)
    candidates: dict[str, Position] = field(default_factory=dict)
    _links: int = 0

    @property
    def signaling_url(self) -> str:
        return f"ws://{SERVICES_IP}:{SIGNALING_PORT}"

    def destroy(self) -> None:
        """Kill what still runs in the lab's namespaces, then delete them."""
        for ns in reversed(self.namespaces):
            _kill_netns_processes(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.namespaces.clear()

    # ---- building ----------------------------------------------------------------------

    def _ns(self, name: str) -> str:
        ns = f"aiq-{name}-{self.tag}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def _veth(self, a: str, a_name: str, b: str, b_name: str) -> None:
        """A veth pair made inside namespace `a`, its other end moved straight into `b`."""
        sh("ip", "-n", a, "link", "add", a_name, "type", "veth", "peer", "name", b_name,
           "netns", b)

    def _to_bridge(self, ns: str, bridge: str, ifname: str, address: str,
                   bridge_ns: str) -> None:
        self._links += 1
        port = f"p{self._links}"
        self._veth(ns, ifname, bridge_ns, port)
        sh("ip", "-n", bridge_ns, "link", "set", port, "master", bridge)
        sh("ip", "-n", bridge_ns, "link", "set", port, "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", ifname)
        sh("ip", "-n", ns, "link", "set", ifname, "up")

    def _bridge(self, ns: str, address: str) -> None:
        sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "br0")
        sh("ip", "-n", ns, "link", "set", "br0", "up")

    def _router(self, name: str, wan: str, lan_net: str, kind: str) -> str:
        ns = self._ns(name)
        self._to_bridge(ns, "br0", "wan", wan, self.pub)
        self._bridge(ns, f"{lan_net}.1")
        sh("ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
        rule = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
        if kind == "symmetric":
            rule.append("--random-fully")
        sh("ip", "netns", "exec", ns, *rule)
        # A home router's firewall: nothing unsolicited from the WAN side, to the router or
        # through it. (Besides, an unsolicited packet to the router that is not dropped leaves
        # a conntrack entry behind, and a later mapping for the same ports then gets another
        # port: plain MASQUERADE would act symmetric whenever a peer's check arrives first.)
        for chain in ("INPUT", "FORWARD"):
            sh("ip", "netns", "exec", ns, "iptables", "-A", chain, "-i", "wan", "-m",
               "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
        return ns

    def _behind(self, name: str, router: str, address: str, gateway: str) -> str:
        ns = self._ns(name)
        self._to_bridge(ns, "br0", "eth0", address, router)
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
        return ns

    def _public(self, name: str, address: str) -> str:
        ns = self._ns(name)
        self._to_bridge(ns, "br0", "eth0", address, self.pub)
        return ns


def build_lab() -> Lab:
    """Make every namespace, link and rule (after removing the labs of dead runs); on any
    failure, delete what was made and raise."""
    remove_stale_labs()
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    lab = Lab(tag=tag, pub="")
    try:
        lab.pub = lab._ns("pub")
        lab._bridge(lab.pub, SERVICES_IP)
        lab.hosts["none"] = Position("host", "none", lab._public("hn", f"{PUBLIC_NET}.10"),
                                     f"{PUBLIC_NET}.10")
        lab.candidates["none"] = Position("candidate", "none",
                                          lab._public("cn", f"{PUBLIC_NET}.20"),
                                          f"{PUBLIC_NET}.20")
        for role, kind, n, wan in (("host", "masquerade", 11, 11), ("host", "symmetric", 12, 12),
                                   ("candidate", "masquerade", 21, 21),
                                   ("candidate", "symmetric", 22, 22)):
            net = f"192.168.{n}"
            router = lab._router(f"r{n}", f"{PUBLIC_NET}.{100 + wan}", net, kind)
            short = role[0] + kind[0]
            pos = Position(role, kind, lab._behind(short, router, f"{net}.2", f"{net}.1"),
                           f"{net}.2")
            (lab.hosts if role == "host" else lab.candidates)[kind] = pos
            if role == "host" and kind == "masquerade":
                lab.candidates["hairpin"] = Position(
                    "candidate", "hairpin", lab._behind("ch", router, f"{net}.3", f"{net}.1"),
                    f"{net}.3")
    except BaseException:
        lab.destroy()
        raise
    return lab


# ---- running code inside a namespace -----------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_local = threading.local()


def in_netns(ns: str, fn: Callable[[], T], address: str | None = None,
             timeout: float = 120.0) -> T:
    """`fn()` in a new thread inside network namespace `ns` (aioice offering `address` as
    its only host candidate, when given); its result, or its exception re-raised."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            _local.addresses = [address] if address else None
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the code in {ns} did not finish within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def start_in_netns(ns: str, fn: Callable[[], T], address: str | None = None
                   ) -> Callable[[float], T]:
    """Like `in_netns` but returns at once; call the result (with a timeout) to wait."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = in_netns(ns, fn, address)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()

    def wait(timeout: float) -> T:
        if not done.wait(timeout):
            raise TimeoutError(f"the code in {ns} did not finish within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    return wait


@contextmanager
def peer_addresses() -> Iterator[None]:
    """While inside: a thread started by `in_netns` with an address offers only that address
    as its ICE host candidate; every other thread keeps the lookup it had."""
    import aioice.ice

    previous = aioice.ice.get_host_addresses

    def lookup(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = getattr(_local, "addresses", None)
        if chosen is None:
            return list(previous(use_ipv4, use_ipv6))
        return [a for a in chosen if use_ipv4 and ":" not in a]

    aioice.ice.get_host_addresses = lookup
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = previous


def tcp_accepts(ns: str, address: str, port: int) -> bool:
    import socket

    def probe() -> bool:
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return True
        except OSError:
            return False

    return in_netns(ns, probe, timeout=5)


# ---- the services on the public network ---------------------------------------------------

@contextmanager
def public_services(lab: Lab, workdir: Any, secret: str) -> Iterator[None]:
    """coturn and the signaling server in the public namespace, each started from the shipped
    deploy/ file rendered with `secret` (plus, for coturn, this run's log and pid paths)."""
    import sys
    import time
    from pathlib import Path

    from tests.nat_helpers import render_signaling_toml, render_turnserver_conf, run_coturn

    work = Path(workdir)
    conf = work / "turnserver.conf"
    conf.write_text(render_turnserver_conf(secret, log_file=work / "turn.log",
                                           pidfile=work / "turn.pid", userdb=work / "turndb"))
    toml = work / "signaling.toml"
    toml.write_text(render_signaling_toml(secret, [f"stun:{SERVICES_IP}:{TURN_PORT}",
                                                   f"turn:{SERVICES_IP}:{TURN_PORT}"
                                                   "?transport=udp"]))
    log = open(work / "signaling.log", "wb")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if k != "ASSESSIQ_TURN_SECRET"}
    signaling = subprocess.Popen(die_with_parent(
        ["ip", "netns", "exec", lab.pub, sys.executable, "-m", "signaling", "--config",
         str(toml), "--log-level", "WARNING"]), stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        with run_coturn(conf, SERVICES_IP, TURN_PORT, netns=lab.pub, log=work / "coturn.out"):
            deadline = time.monotonic() + 15
            while not tcp_accepts(lab.pub, SERVICES_IP, SIGNALING_PORT):
                if time.monotonic() > deadline or signaling.poll() is not None:
                    raise RuntimeError("the signaling server did not start: "
                                       + (work / "signaling.log").read_text()[-2000:])
                time.sleep(0.05)
            yield
    finally:
        signaling.terminate()
        try:
            signaling.wait(5)
        except subprocess.TimeoutExpired:
            signaling.kill()
            signaling.wait()
        log.close()


# ---- one interview through the lab --------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """How one host/candidate pair connected, seen from the candidate."""

    host: str
    candidate: str
    local: str  # the candidate's side of the nominated pair: host, srflx, prflx or relay
    remote: str
    connect_ms: float  # Candidate.join(invite) → returned with the channels open and synced
    checks: tuple[str, ...] = ()  # what else was shown to work in this session

    @property
    def path(self) -> str:
        return "relay" if "relay" in (self.local, self.remote) else "direct"

    def line(self) -> str:
        extra = f"; {', '.join(self.checks)}" if self.checks else ""
        return (f"host {self.host:<10} × candidate {self.candidate:<10} → {self.path:<6} "
                f"({self.local}/{self.remote}) in {self.connect_ms:6.0f} ms{extra}")


CODE = "def solve(xs):\n    return sorted(xs)\n"
REVIEW = "# looks right\n"


def run_session(lab: Lab, host_kind: str, cand_kind: str, workdir: Any, *,
                full: bool = False, fps: int = 15, relay_only: tuple[bool, bool] = (False, False),
                during_call: Callable[[], Any] | None = None,
                timeout: float = 40.0) -> Outcome:
    """The host at `lab.hosts[host_kind]` opens a session on the lab's signaling server; a
    candidate with an empty configuration at `lab.candidates[cand_kind]` joins it. Both run
    with `PeerConfig()`: every STUN/TURN server comes from the signaling server (host and
    candidate) and the host's offer (candidate). With `full`, both have the call
    (synthetic camera and microphone, 640×480 at `fps`), and the document both ways, a signed
    event and the media both ways are checked; then `during_call()` runs (in a worker
    thread) while the call goes on, and they hang up. `relay_only` is (host's, candidate's)
    setting, still with no server of their own."""
    import asyncio
    import queue
    import time
    from pathlib import Path

    from assessiq.core.identity import Identity
    from assessiq.media import SYNTHETIC, MediaConfig
    from assessiq.peer import Candidate, Host, PeerConfig

    work = Path(workdir)
    name = f"{host_kind}-{cand_kind}"
    files = f"{name}-{secrets.token_hex(3)}"
    invites: queue.Queue[str | BaseException] = queue.Queue()
    finished = threading.Event()  # the candidate is done: the host may hang up
    host_checked = threading.Event()  # the host has seen what it waits for: so may the candidate
    media = (MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, fps=fps)
             if full else None)

    async def until(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: timed out waiting for {what}")
            await asyncio.sleep(0.02)

    def call_up(session: Any) -> bool:
        m = session.media
        return bool(m is not None and m.remote_video.received.count > 10
                    and m.remote_audio.received.count > 10)

    async def host_side() -> tuple[str, ...]:
        try:
            host = await Host.start(identity=Identity.generate(), signaling=lab.signaling_url,
                                    config=PeerConfig(relay_only=relay_only[0]),
                                    session_path=work / f"{files}.aiq",
                                    runs=False, media=media)
        except BaseException as exc:
            invites.put(exc)
            raise
        try:
            invites.put(host.invite.encode())
            await host.connected(timeout)
            checks: tuple[str, ...] = ()
            if full:
                await until(lambda: host.doc.code_text.endswith(CODE), "the candidate's code")
                host.doc.insert_code(0, REVIEW, origin="host")
                await until(lambda: [e.kind for e in host.events] == ["paste"],
                            "the signed event, verified")
                await until(lambda: call_up(host), "video and audio from the candidate")
                checks = ("document both ways", "signed event verified", "call both ways")
                if during_call is not None:
                    await asyncio.to_thread(during_call)
            host_checked.set()
            await asyncio.to_thread(finished.wait, timeout)
            return checks
        finally:
            await host.close()

    async def candidate_side() -> tuple[float, tuple[str, str] | None]:
        invite = await asyncio.to_thread(invites.get, True, timeout)
        if isinstance(invite, BaseException):
            raise RuntimeError(f"{name}: the host did not start") from invite
        t0 = time.perf_counter()
        cand = await Candidate.join(invite, config=PeerConfig(relay_only=relay_only[1]),
                                    media=media, timeout=timeout,
                                    session_path=work / f"{files}.candidate.aiq")
        connect_ms = (time.perf_counter() - t0) * 1000
        try:
            assert cand.link is not None
            pair = cand.link.conn.selected_pair()
            if full:
                cand.doc.insert_code(len(cand.doc.code_text), CODE, origin="candidate")
                await cand.send_event("paste", {"phase": "instant", "chars": len(CODE)})
                await until(lambda: cand.doc.code_text.startswith(REVIEW), "the host's edit")
                await until(lambda: call_up(cand), "video and audio from the host")
                await until(lambda: not cand.outbox, "the event's receipt")
                await until(host_checked.is_set, "the host's checks")
            return connect_ms, pair
        finally:
            finished.set()
            await cand.close()

    wait_host = start_in_netns(lab.hosts[host_kind].ns, lambda: asyncio.run(host_side()),
                               lab.hosts[host_kind].address)
    try:
        pos = lab.candidates[cand_kind]
        connect_ms, pair = in_netns(pos.ns, lambda: asyncio.run(candidate_side()),
                                    pos.address, timeout=timeout * 3)
    finally:
        finished.set()
        host_checked.set()
    checks = wait_host(timeout * 3)
    if pair is None:
        raise AssertionError(f"{name}: connected, but no nominated ICE pair was found")
    return Outcome(host_kind, cand_kind, pair[0], pair[1], connect_ms, checks)


def interface_bytes(ns: str, ifname: str) -> int:
    """Bytes received plus sent so far on an interface of a namespace."""
    import json

    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", ifname],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])
