"""Connecting to a Ray cluster for ``--ray ADDRESS`` (extract, train), with Ray optional.

ADDRESS is one of:

- ``local``: a private Ray runtime started on this machine for this process (no other process
  can join it; it stops with the process);
- ``auto``: the cluster a ``ray start --head`` on this machine (or $RAY_ADDRESS) runs;
- ``HOST:PORT``: the head node's GCS address (``ray start --head --port PORT`` prints it);
- ``ray://HOST:PORT``: the head's Ray Client server (``ray start --head`` listens on 10001).

An address whose host does not answer on its port is refused within ``timeout_s`` (a TCP probe
before Ray is asked, since Ray itself retries for minutes), with a ClusterError naming it. Ray is
the ``cluster`` extra: without it, ``require_ray`` says how to install it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = ('pip install "ser-studio[cluster]" (in a checkout of the repository: '
                'pip install -e ".[cluster]")')
NO_RAY = ("none", "off")  # what --ray takes to run here without Ray (a resumed Ray run locally)


class ClusterError(RuntimeError):
    """Ray is missing, the address is malformed or nothing answers there; the message names
    the address and what to do."""


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """The cluster one ``connect`` reached: its address as given, its alive nodes (host,
    CPUs, GPUs each) and their CPUs in all."""

    address: str
    nodes: tuple[dict, ...]
    cpus: float

    def describe(self) -> str:
        """One line for logs and the wizard: "ADDRESS: N nodes, C CPUs (host a, host b)"."""
        hosts = ", ".join(f"{n['host']} ({n['cpus']:g} CPUs)" for n in self.nodes)
        return (f"{self.address}: {len(self.nodes)} node{'s' * (len(self.nodes) != 1)}, "
                f"{self.cpus:g} CPUs ({hosts})")


def require_ray():
    """The ``ray`` module; ClusterError saying how to install it when it is not installed."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"running on a Ray cluster needs Ray, which is not installed here: "
                           f"{INSTALL_HINT}") from None
    return ray


def parse_address(address: str) -> tuple[str, str | None, int | None]:
    """(kind, host, port) of ADDRESS: kind "local", "auto", "gcs" (HOST:PORT) or "client"
    (ray://HOST:PORT); ClusterError naming it when it is none of those."""
    text = (address or "").strip()
    if text in ("local", "auto"):
        return text, None, None
    kind, rest = ("client", text[len("ray://"):]) if text.startswith("ray://") else ("gcs", text)
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--ray {address!r}: expected local, auto, HOST:PORT or "
                           f"ray://HOST:PORT")
    return kind, host.strip("[]"), int(port)


def probe(address: str, timeout_s: float = 10.0) -> None:
    """ClusterError naming ``address`` when its HOST:PORT takes no TCP connection within
    ``timeout_s`` (local and auto are not probed: Ray finds them itself, or says it cannot)."""
    kind, host, port = parse_address(address)
    if host is None:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"Ray cluster at {address} is not reachable ({reason} at "
                           f"{host}:{port} within {timeout_s:g} s); start its head with `ray "
                           f"start --head` there, or check the address and firewall") from None


def cluster_info(address: str) -> ClusterInfo:
    """The nodes of the cluster this process is connected to (ray.init done)."""
    ray = require_ray()
    nodes = tuple({"host": n.get("NodeManagerAddress", "?"),
                   "cpus": float(n.get("Resources", {}).get("CPU", 0.0)),
                   "gpus": float(n.get("Resources", {}).get("GPU", 0.0))}
                  for n in ray.nodes() if n.get("Alive"))
    return ClusterInfo(address, nodes, sum(n["cpus"] for n in nodes))


def _use_token_if_present() -> None:
    """Send Ray's authentication token when one is here: ``ray start --head`` enables token
    authentication and keeps the token in ~/.ray/auth_token, but a driver joining an existing
    cluster sends it only with RAY_AUTH_MODE=token (set here unless RAY_AUTH_MODE is set;
    Ray reads it when first imported, so a process that imported Ray before needs it set
    beforehand)."""
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN")
                                              or Path(token_file).is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def connect(address: str, *, num_cpus: int | None = None, timeout_s: float = 30.0
            ) -> ClusterInfo:
    """Join (or, for ``local``, start) the Ray cluster at ``address`` from this process and
    return what it holds. num_cpus: the CPUs of a ``local`` runtime (default: this machine's).
    A process already connected stays so (a HOST:PORT other than its cluster's is refused).
    ClusterError naming the address when Ray
    is missing or the cluster cannot be reached (within ``timeout_s``)."""
    kind, host, port = parse_address(address)
    probe(address, timeout_s=min(timeout_s, 10.0))
    if kind != "local":
        _use_token_if_present()  # before Ray is imported: it reads the mode once
    ray = require_ray()
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if kind == "gcs" and f"{host}:{port}" != current:
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: this process "
                               f"is connected to the one at {current} already")
        return cluster_info(address)
    options = dict(include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        if kind == "local":
            ray.init(address="local", num_cpus=num_cpus, **options)
        elif kind == "client":
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"cannot connect to the Ray cluster at {address}: {first}") from None
    info = cluster_info(address)
    log.info("Ray cluster %s", info.describe())
    return info


def disconnect() -> None:
    """Leave the cluster (a ``local`` runtime stops); nothing when not connected or no Ray."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
