"""``zentinel-operator``: run the operator (``run``) or generate its CRDs (``crds``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zentinel-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (settings from ZENTINEL_OPERATOR_* variables)")
    run.add_argument("--verbose", action="store_true")
    crds = sub.add_parser("crds", help="write or check crds/ from the models")
    crds.add_argument("mode", choices=["write", "check"])
    args = parser.parse_args(argv)

    if args.command == "crds":
        from . import crdgen

        return crdgen.main([args.mode])

    import kopf

    from . import registration

    settings = registration.SETTINGS
    kopf.configure(verbose=args.verbose)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,
        liveness_endpoint=settings.liveness_endpoint,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
