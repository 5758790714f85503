"""Config Error: a config that does not validate or is missing, and reloads Zentinel rejected."""

from __future__ import annotations

from ...models.common import Category, Severity
from ..snapshot import Finding, LogCause, Snapshot
from . import fmt
from .crash import Crash
from .findings import Findings
from .pods import Pods, log_evidence, logs


def check_config(snapshot: Snapshot, pods: Pods, crash: Crash, out: Findings) -> None:
    """A config that does not validate (or is missing), and reloads Zentinel rejected.

    Zentinel validates a changed config before using it and keeps serving the old one when the new one
    is bad, so an invalid config with every pod running is SEV3: nothing is broken yet, but any pod
    that restarts now reads the bad file and exits. With pods crash-looping it is the cause of an
    outage: at least SEV2, and as severe as the crash when that is worse (a whole fleet down on a bad
    config is SEV1, and the rollback is the fix).
    """
    config = snapshot.config
    lines: list[str] = []
    if config is not None and not config.present:
        lines.append("config not found: the ConfigMap or its key is missing")
    elif config is not None and not config.valid:
        errors = fmt.listing([fmt.clip(e) for e in config.errors], sep="; ") if config.errors else "no details"
        lines.append(f"config revision {config.revision or '(unknown)'} does not validate: {errors}")
    if lines:
        assert config is not None
        if pods.down and crash.severity is not None:
            severity = crash.severity if crash.severity.worse_than(Severity.SEV2) else Severity.SEV2
            lines.append(f"{len(pods.down)} of {pods.total} pods crash-looping on it")
        else:
            severity = Severity.SEV3
            if pods.up:
                running = sorted({p.config_revision for p in pods.up if p.config_revision})
                on = f" (revision {', '.join(running)})" if running else ""
                lines.append(
                    f"{len(pods.up)} of {pods.total} pods keep serving the previous config{on}; "
                    "a pod that restarts now would fail to start"
                )
        if config.last_known_good:
            lines.append(f"last known good config revision: {config.last_known_good}")
        summary = (
            "Config missing: the Zentinel's ConfigMap or key does not exist"
            if not config.present
            else f"Config error: revision {config.revision or '(unknown)'} does not validate"
        )
        out.add(Finding(Category.CONFIG_ERROR, severity, summary, evidence=tuple(lines), config_caused=True))

    rejected = logs(snapshot, pods.up, LogCause.CONFIG_REJECTED)
    if rejected:
        out.add(
            Finding(
                Category.CONFIG_ERROR,
                Severity.SEV3,
                "Config reload rejected: Zentinel keeps serving the previous config",
                evidence=tuple(log_evidence("config reload REJECTED, the old config keeps serving", rejected)),
                subjects=tuple(sorted({m.pod for m in rejected})),
                config_caused=True,
            )
        )
