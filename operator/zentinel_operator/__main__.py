"""``zentinel-operator``: run the operator (``run``), generate its CRDs (``crds``) or release its
finalizers before an uninstall (``release-finalizers``, the chart's pre-delete hook)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import kopf

from . import config, leader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zentinel-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (settings from ZENTINEL_OPERATOR_* variables)")
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--log-format",
        choices=["full", "plain", "json"],
        default=None,
        help="full (timestamped text), plain, or json (one object a line); default: ZENTINEL_OPERATOR_LOG_FORMAT",
    )
    crds = sub.add_parser("crds", help="write or check crds/ from the models")
    crds.add_argument("mode", choices=["write", "check"])
    sub.add_parser(
        "release-finalizers",
        add_help=False,
        help="stop the operator and remove its finalizers (helm uninstall's hook); --help for more",
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "release-finalizers":
        from . import uninstall

        return uninstall.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.command == "crds":
        from . import crdgen

        return crdgen.main([args.mode])

    import kopf

    from . import registration

    settings = registration.SETTINGS
    kopf.configure(verbose=args.verbose, log_format=log_format(args.log_format or settings.log_format))
    elector = _elect(settings) if settings.leader_election else None
    try:
        kopf.run(
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=True,
            liveness_endpoint=settings.liveness_endpoint,
        )
    finally:
        if elector is not None:
            elector.release()
    return 0


def _elect(settings: config.Settings) -> leader.LeaderElector:
    """Wait as a standby until this replica holds the Lease; keep it renewed; exit at once when it is lost."""
    elector = leader.LeaderElector(
        leader.LeaseConfig(
            name=settings.lease(),
            namespace=settings.lease_home(),
            identity=leader.identity(),
            lease_duration=settings.lease_duration,
            renew_deadline=settings.lease_renew_deadline,
            retry_period=settings.lease_retry_period,
        )
    )
    leader.label_own_pod(active=False)
    with leader.standby_probe(settings.liveness_endpoint):
        elector.acquire()
    leader.CURRENT = elector
    leader.label_own_pod(active=True)
    # No graceful shutdown: a standby may take the Lease soon, and this replica must not act any more.
    elector.keep(on_lost=lambda: os._exit(1))
    return elector


def log_format(name: str) -> kopf.LogFormat:
    """kopf's log format by its name (``json`` writes one JSON object a line, for log collectors)."""
    import kopf

    return kopf.LogFormat[name.upper()]


if __name__ == "__main__":
    sys.exit(main())
