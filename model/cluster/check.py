"""``python -m ser_studio.model.cluster.check ADDRESS``: can this machine reach the Ray
cluster at ADDRESS, and what does it hold? One JSON line on stdout, exit code 0:
{"address", "nodes": [{"host", "cpus", "gpus"}], "cpus", "text"} (``text``:
ClusterInfo.describe()); or {"address", "error"} with exit code 2 (Ray missing, the address
malformed or unreachable, named within 30 s).

The training wizard runs it as a child process before it starts a run on a cluster, so
connecting never blocks or changes the app's own process. ``local`` starts a private runtime
for the check and stops it.
"""
from __future__ import annotations

import json
import sys

from ser_studio.model.cluster.connect import ClusterError, connect, disconnect


def check(address: str) -> tuple[dict, int]:
    """(the JSON object, exit code) of one check of ``address``."""
    try:
        info = connect(address)
    except ClusterError as exc:
        return {"address": address, "error": str(exc)}, 2
    try:
        return {"address": address, "nodes": [dict(n) for n in info.nodes], "cpus": info.cpus,
                "text": info.describe()}, 0
    finally:
        disconnect()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(json.dumps({"address": None, "error": "usage: python -m "
                          "ser_studio.model.cluster.check ADDRESS"}))
        return 2
    result, code = check(args[0])
    print(json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
