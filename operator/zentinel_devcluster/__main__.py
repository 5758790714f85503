"""``scripts/cluster build|up|down|status|env``: the local control plane, one command."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import tools
from .cluster import Cluster, ClusterError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the cluster keeps its files (default: $ZENTINEL_CLUSTER_DIR or "
        "~/.cache/zentinel-operator/cluster/default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or reuse from the cache) every binary the cluster needs")
    optional = [name for name in tools.TOOLS if name not in tools.default_tools()]
    b.add_argument(
        "tools",
        nargs="*",
        help=f"only these, of {', '.join(tools.TOOLS)} (default: all but the optional {', '.join(optional)})",
    )
    sub.add_parser("build-zentinel", help="cargo install the real Zentinel (the data plane of the contract tests)")
    up = sub.add_parser("up", help="start the cluster (idempotent)")
    up.add_argument("--apiserver-port", type=int, default=None, help="default: a free port")
    up.add_argument("--timeout", type=float, default=180.0)
    sub.add_parser("down", help="stop every process and remove the cluster's files")
    sub.add_parser("status", help="print the state of each component; exit 0 when up, 3 when not")
    sub.add_parser("env", help='print shell exports for KUBECONFIG and PATH (eval "$(scripts/cluster env)")')
    args = parser.parse_args(argv)

    cluster = Cluster(args.state_dir)
    try:
        if args.command == "build":
            unknown = [t for t in args.tools if t not in tools.TOOLS]
            if unknown:
                parser.error(f"unknown tools {unknown}; choose from {', '.join(tools.TOOLS)}")
            tools.ensure(args.tools or None)
        elif args.command == "build-zentinel":
            print(tools.build_zentinel())
        elif args.command == "up":
            tools.ensure(["k8s", "etcd", "kwok"])
            cluster.up(apiserver_port=args.apiserver_port, timeout=args.timeout)
        elif args.command == "down":
            cluster.down()
        elif args.command == "status":
            status = cluster.status()
            print(json.dumps(status, indent=2))
            return 0 if status["up"] else 3
        elif args.command == "env":
            for key, value in cluster.env().items():
                print(f"export {key}={shlex.quote(value)}")
    except (ClusterError, tools.ToolError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
