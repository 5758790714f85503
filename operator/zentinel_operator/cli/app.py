"""Argument parsing, connection and dispatch for ``zentinelctl`` and ``kubectl zentinel``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import k8s
from ..core.durations import DurationError, parse_duration
from ..models.incident import DECISION_REASON_MAX, RESOLUTION_NOTE_MAX
from ..models.silence import SILENCE_COMMENT_MAX
from . import commands
from . import silences as silence_commands
from .completion import SHELLS
from .exits import EPILOG, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CliError
from .kube import Api, KubeApi, KubeContext, connect
from .render import FORMATS, IncidentFilter, dump, output_arg, severity_arg
from .silences import category_arg, time_arg

if TYPE_CHECKING:
    from .triage import TriageReport

DESCRIPTION = """\
Work Zentinel incidents from a terminal: list and read them, acknowledge, resolve, approve pending
remediations, silence them for a maintenance, read the post-mortem draft, export the evidence bundle,
and run the runbook's triage against a Zentinel in the cluster or against a host by URL."""


def _prog(argv0: str) -> str:
    name = Path(argv0).name
    return "kubectl zentinel" if name.startswith("kubectl-") else "zentinelctl"


def _severity(text: str) -> str:
    try:
        return severity_arg(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _output(text: str) -> str:
    try:
        return output_arg(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from e
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than zero")
    return value


def _category(text: str) -> str:
    try:
        return category_arg(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _time(text: str) -> dt.datetime:
    try:
        return time_arg(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _duration(text: str) -> dt.timedelta:
    try:
        value = parse_duration(text)
    except DurationError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    if value <= dt.timedelta(0):
        raise argparse.ArgumentTypeError(f"{text} must be longer than zero")
    return value


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("zentinel-incident-operator")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from e
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than zero")
    return value


def _common(*, suppress: bool, listing: bool = False) -> argparse.ArgumentParser:
    """Options every subcommand takes. The copy given to subcommands leaves unset options alone, so
    ``zentinelctl -n ns show x`` and ``zentinelctl show x -n ns`` both work."""
    default: Any = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("cluster and output")
    g.add_argument("-n", "--namespace", default=default, help="namespace (default: the kubeconfig context's)")
    g.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    g.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
    g.add_argument(
        "-o",
        "--output",
        type=_output,
        metavar="FORMAT",
        default=argparse.SUPPRESS if suppress else "table",
        help=f"{'|'.join(FORMATS)}: table for people (default); wide adds columns and name prints "
        "zentinelincident.zentinel.io/NAME (incidents, show); json, yaml or a kubectl jsonpath template "
        "for scripts",
    )
    g.add_argument("--as", dest="as_user", metavar="USER", default=default, help="impersonate this user")
    g.add_argument(
        "--as-group",
        dest="as_group",
        metavar="GROUP",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        help="impersonate this group (with --as)",
    )
    if listing:
        g.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    return p


def build_parser(prog: str = "zentinelctl") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common, listing = _common(suppress=True), _common(suppress=True, listing=True)

    def add(name: str, help_: str, parents: Sequence[argparse.ArgumentParser] = (common,)) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=list(parents),
        )

    p = add(
        "incidents",
        "list incidents (kubectl's columns plus the age of the last sighting; -o json|yaml: one row per incident)",
        [listing],
    )
    p.add_argument("--open", action="store_true", help="only incidents not resolved")
    p.add_argument(
        "--severity",
        type=_severity,
        action="append",
        default=[],
        metavar="SEV",
        help="only this severity (SEV1..SEV4, or 1..4); repeat for several",
    )
    p.add_argument("--zentinel", metavar="NAME", help="only incidents of this Zentinel")
    p.add_argument(
        "-w", "--watch", action="store_true", help="after the list, print each change as it happens (Ctrl-C ends)"
    )
    p.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="with --watch: stop after this long (default: never)"
    )

    p = add("show", "one incident: conditions, timeline, remediations, escalations, deliveries, evidence")
    p.add_argument("incident")

    by_help = "who (default: $USER, else the kubeconfig user)"
    p = add("ack", "acknowledge an incident (patches spec.acknowledgedBy)")
    p.add_argument("incident")
    p.add_argument("--by", metavar="NAME", help=by_help)

    p = add("resolve", "resolve an incident by hand (patches spec.resolvedBy and spec.resolutionNote)")
    p.add_argument("incident")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.add_argument("--note", metavar="TEXT", help=f"why it is resolved (at most {RESOLUTION_NOTE_MAX} characters)")

    p = add("approve", "approve a remediation waiting for approval (appends to spec.approvals)")
    p.add_argument("incident")
    p.add_argument("action_id", nargs="?", metavar="ACTION_ID", help="default: the last one pending approval")
    p.add_argument("--by", metavar="NAME", help=by_help)

    p = add("reject", "reject a remediation waiting for approval: it is not carried out, the ladder goes on")
    p.add_argument("incident")
    p.add_argument("action_id", nargs="?", metavar="ACTION_ID", help="default: the last one pending approval")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.add_argument(
        "--reason", metavar="TEXT", help=f"why (shown on the record; at most {DECISION_REASON_MAX} characters)"
    )

    p = add("postmortem", "print the post-mortem draft (markdown)")
    p.add_argument("incident")
    p.add_argument(
        "--generated", action="store_true", help="the operator's newer draft, kept apart once a person edited theirs"
    )

    p = add("evidence", "export the evidence bundle to DIR/INC-<YYYYMMDD>-<NNN>/<phase>/ and verify it")
    p.add_argument("incident")
    p.add_argument("--out", metavar="DIR", default=".", help="folder to export into (default: .)")

    p = add("triage", "run the runbook's diagnostics and decision tree on a Zentinel now")
    p.add_argument("zentinel", nargs="?", help="a Zentinel in the cluster (or use --url)")
    p.add_argument("--url", help="a Zentinel outside Kubernetes: its metrics server, e.g. http://host:9090")
    p.add_argument("--admin-url", help="the listener with /admin/upstreams (default: --url)")
    p.add_argument("--health-url", help="the listener with /health and /ready (default: --admin-url)")
    p.add_argument("--policy", metavar="FILE.yaml", help="thresholds from this ZentinelIncidentPolicy file")
    p.add_argument(
        "--interval", type=_positive, default=5.0, metavar="SECONDS", help="between the two scrapes (default: 5)"
    )
    p.add_argument("--timeout", type=_positive, default=3.0, metavar="SECONDS", help="per request (default: 3)")

    p = add("notify", "notifications: `notify test POLICY` sends a test message to each receiver of the policy")
    nsub = p.add_subparsers(dest="notify_command", required=True, metavar="SUBCOMMAND")
    t = nsub.add_parser(
        "test",
        help="send a test message to each receiver of POLICY and report each result (exit 1 if one failed)",
        description="Send a test message (a SEV4 trigger, resolved at once on PagerDuty and Alertmanager) to "
        "each receiver of the ZentinelIncidentPolicy, with the receivers' Secrets read from the cluster; one "
        "line per receiver, OK or FAILED with the reason. Secret values are never printed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    t.add_argument("policy", metavar="POLICY")
    t.add_argument("--timeout", type=_positive, default=10.0, metavar="SECONDS", help="per receiver (default: 10)")

    p = add("silence", "silences: hold the pages (and optionally the remediation) of matching incidents for a while")
    ssub = p.add_subparsers(dest="silence_command", required=True, metavar="SUBCOMMAND")

    def add_silence(
        name: str, help_: str, description: str, parent: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        return ssub.add_parser(
            name,
            help=help_,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[parent],
        )

    a = add_silence(
        "add",
        "create a ZentinelSilence: matching incidents still open and escalate, their pages are held until it ends",
        "Create a ZentinelSilence (like amtool silence add). Every matcher given must match: --zentinel, "
        "--category (repeat), --severity (repeat); at least one. While it is active, matching incidents are "
        "recorded and escalate as usual, but their pages are held; when it ends and an incident is still open, "
        "what it owes is sent. With --remediation, no new remediation starts on them either.",
        common,
    )
    a.add_argument("--zentinel", metavar="NAME", help="only incidents of this Zentinel")
    a.add_argument(
        "--category", type=_category, action="append", default=[], metavar="CATEGORY", help="repeat for several"
    )
    a.add_argument(
        "--severity", type=_severity, action="append", default=[], metavar="SEV", help="SEV1..SEV4; repeat for several"
    )
    span = a.add_mutually_exclusive_group(required=True)
    span.add_argument("-d", "--duration", type=_duration, metavar="DURATION", help="how long, e.g. 2h or 1h30m")
    span.add_argument("--until", type=_time, metavar="TIME", help="when it ends (RFC 3339; without a zone: UTC)")
    a.add_argument("--start", type=_time, metavar="TIME", help="when it starts (RFC 3339; default: now)")
    a.add_argument(
        "-c", "--comment", required=True, help=f"why, e.g. the maintenance ticket (at most {SILENCE_COMMENT_MAX})"
    )
    a.add_argument("--remediation", action="store_true", help="hold remediation too (default: only the pages)")
    a.add_argument("--by", metavar="NAME", help=by_help)
    a.add_argument("--name", metavar="NAME", help="name of the silence (default: the API server's silence-xxxxx)")

    s = add_silence(
        "list",
        "list silences with their state as of now (-o json|yaml: one row per silence)",
        "List ZentinelSilences: state (Pending, Active, Expired), matchers, what they hold, when they end.",
        listing,
    )
    s.add_argument("--active", action="store_true", help="only silences active now")
    e = add_silence(
        "expire",
        "end a silence now (it stays, Expired)",
        "End a silence now: spec.endsAt becomes now. What it held is owed again from the operator's next pass.",
        common,
    )
    e.add_argument("silence", metavar="NAME")

    p = add("completion", "print a shell completion script: source <(zentinelctl completion bash)", [])
    p.add_argument("shell", choices=SHELLS)
    return parser


def default_user(kctx: KubeContext | None) -> str | None:
    """``$USER``, else the kubeconfig context's user, else the login name."""
    who = os.environ.get("USER") or (kctx.user if kctx else None)
    if who:
        return who
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _api_error(e: Exception) -> CliError:
    status = getattr(e, "status", None)
    reason = getattr(e, "reason", None) or type(e).__name__
    message = ""
    body = getattr(e, "body", None)
    if body:
        try:
            message = str(json.loads(body).get("message") or "")
        except (ValueError, AttributeError):
            message = ""
    text = f"API {status} {reason}" + (f": {message}" if message else "")
    return CliError(text, EXIT_NOT_FOUND if status == 404 else EXIT_ERROR)


def run(args: argparse.Namespace, api: Api | None, kctx: KubeContext | None) -> tuple[int, str]:
    now = dt.datetime.now(dt.UTC)
    fmt: str = args.output
    if args.command == "completion":
        from .completion import script

        return EXIT_OK, script(build_parser("zentinelctl"), args.shell, "zentinelctl")
    if fmt in ("wide", "name") and args.command not in ("incidents", "show", "silence"):
        raise CliError(f"-o {fmt} goes with incidents, show and silence", EXIT_USAGE)
    if args.command == "incidents" and args.timeout and not args.watch:
        raise CliError("--timeout goes with --watch", EXIT_USAGE)
    url_mode = args.command == "triage" and args.url
    if args.command == "triage":
        if bool(args.url) == bool(args.zentinel):
            raise CliError("triage needs either a Zentinel name or --url", EXIT_USAGE)
        if not args.url and (args.admin_url or args.health_url):
            raise CliError("--admin-url and --health-url go with --url", EXIT_USAGE)
    if url_mode:
        return _triage_url(args, fmt)
    if kctx is None:
        kctx = connect(args.kubeconfig, args.context)
    try:
        k8s.impersonate(args.as_user, args.as_group)
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from e
    api = api or KubeApi()
    ns: str = args.namespace or kctx.namespace
    cmd = args.command
    if cmd == "incidents":
        where = None if args.all_namespaces else ns
        chosen = IncidentFilter(open_only=args.open, severities=args.severity, zentinel=args.zentinel)
        if not args.watch:
            return commands.incidents(api, where, chosen, fmt=fmt, now=now)

        def write(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        code = commands.watch_incidents(
            api, where, chosen, fmt=fmt, timeout=args.timeout, write=write, clock=lambda: dt.datetime.now(dt.UTC)
        )
        return code, ""
    if cmd == "notify":
        return _notify_test(api, ns, args.policy, timeout=args.timeout, fmt=fmt, now=now)
    if cmd == "show":
        return commands.show(api, ns, args.incident, fmt=fmt, now=now)
    if cmd == "postmortem":
        return commands.postmortem(api, ns, args.incident, fmt=fmt, generated=args.generated)
    if cmd == "evidence":
        return commands.evidence(api, ns, args.incident, out_dir=Path(args.out), fmt=fmt)
    if cmd == "triage":
        return _triage_cluster(args, api, ns, fmt)
    if cmd == "silence" and args.silence_command == "list":
        where = None if args.all_namespaces else ns
        return silence_commands.list_silences(api, where, fmt=fmt, now=now, active_only=args.active)
    if cmd == "silence" and args.silence_command == "expire":
        return silence_commands.expire(api, ns, args.silence, fmt=fmt, now=now)
    by = args.by or default_user(kctx)
    if not by or not by.strip():
        raise CliError("cannot tell who you are: pass --by NAME", EXIT_USAGE)
    if cmd == "ack":
        return commands.ack(api, ns, args.incident, by=by, fmt=fmt)
    if cmd == "resolve":
        _at_most("--note", args.note, RESOLUTION_NOTE_MAX)
        return commands.resolve(api, ns, args.incident, by=by, note=args.note, fmt=fmt)
    if cmd == "silence":
        _at_most("--comment", args.comment, SILENCE_COMMENT_MAX)
        body = silence_commands.silence_body(
            name=args.name,
            zentinel=args.zentinel,
            categories=args.category,
            severities=args.severity,
            starts=args.start,
            ends=args.until or (args.start or now) + args.duration,
            by=by,
            comment=args.comment,
            remediation=args.remediation,
        )
        return silence_commands.add(api, ns, body, fmt=fmt, now=now)
    if cmd == "approve":
        return commands.decide(api, ns, args.incident, args.action_id, by=by, fmt=fmt)
    if cmd == "reject":
        _at_most("--reason", args.reason, DECISION_REASON_MAX)
        return commands.decide(api, ns, args.incident, args.action_id, by=by, fmt=fmt, reject=True, reason=args.reason)
    raise CliError(f"unknown command {cmd}", EXIT_USAGE)


def _at_most(flag: str, text: str | None, limit: int) -> None:
    """Refuse a text the schema would refuse, before any request."""
    if text is not None and len(text) > limit:
        raise CliError(f"{flag} is longer than {limit} characters", EXIT_USAGE)


def _notify_test(api: Api, ns: str, policy: str, *, timeout: float, fmt: str, now: dt.datetime) -> tuple[int, str]:
    from . import notifytest

    obj = api.get_policy(ns, policy)
    if obj is None:
        raise CliError(f'ZentinelIncidentPolicy "{policy}" not found in namespace "{ns}"', EXIT_NOT_FOUND)
    receivers = notifytest.policy_receivers(obj)
    checks = asyncio.run(notifytest.check_receivers(ns, policy, receivers, per_receiver=timeout, now=now))
    text = notifytest.render_checks(policy, checks) if fmt == "table" else dump(checks, fmt)
    return notifytest.exit_code(checks), text


def _triage_output(report: TriageReport, fmt: str) -> tuple[int, str]:
    from .triage import exit_code, render_triage, report_data

    text = render_triage(report) if fmt == "table" else dump(report_data(report), fmt)
    return exit_code(report.findings), text


def _triage_url(args: argparse.Namespace, fmt: str) -> tuple[int, str]:
    from ..models.policy import ZentinelIncidentPolicySpec
    from .triage import endpoints, load_policy_file, triage_url

    label, policy = (
        load_policy_file(args.policy) if args.policy else ("default thresholds", ZentinelIncidentPolicySpec())
    )
    ep = endpoints(args.url, args.admin_url, args.health_url)
    report = asyncio.run(
        triage_url(ep, interval=args.interval, request_timeout=args.timeout, policy=policy, policy_label=label)
    )
    return _triage_output(report, fmt)


def _triage_cluster(args: argparse.Namespace, api: Api, ns: str, fmt: str) -> tuple[int, str]:
    from .triage import load_policy_file, triage_cluster

    override = load_policy_file(args.policy) if args.policy else None
    zen = api.get_zentinel(ns, args.zentinel)
    if zen is None:
        raise CliError(f'Zentinel "{args.zentinel}" not found in namespace "{ns}"', EXIT_NOT_FOUND)
    policies = [] if override else api.list_policies(ns)
    cluster_policies = [] if override else api.list_cluster_policies()
    report = asyncio.run(
        triage_cluster(
            zen, policies, interval=args.interval, cluster_policies=cluster_policies, policy_override=override
        )
    )
    return _triage_output(report, fmt)


def main(argv: Sequence[str] | None = None, *, api: Api | None = None, kube_context: KubeContext | None = None) -> int:
    """Entry point of ``zentinelctl`` and ``kubectl-zentinel``; ``api`` and ``kube_context`` are for tests."""
    parser = build_parser(_prog(sys.argv[0]))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        code, text = run(args, api, kube_context)
    except CliError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config import ConfigException
        from urllib3.exceptions import HTTPError

        if isinstance(e, ApiException):
            err = _api_error(e)
        elif isinstance(e, ConfigException):
            err = CliError(f"cannot load the kubeconfig: {e}", EXIT_ERROR)
        elif isinstance(e, HTTPError):
            err = CliError(f"cannot reach the API server: {type(e).__name__}: {e}", EXIT_ERROR)
        elif isinstance(e, OSError):
            err = CliError(f"{type(e).__name__}: {e}", EXIT_ERROR)
        else:
            raise
        print(f"error: {err.message}", file=sys.stderr)
        return err.code
    sys.stdout.write(text)
    sys.stdout.flush()
    return code
