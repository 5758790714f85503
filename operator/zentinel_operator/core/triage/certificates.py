"""Certificate Invalid and Certificate Expiring, from the TLS Secrets and what the pods serve."""

from __future__ import annotations

import datetime as dt
import math

from ...models.common import Category, Severity
from ...models.policy import Thresholds
from ..durations import format_duration
from ..snapshot import CertificateSignal, Finding, Snapshot
from . import fmt
from .findings import Findings, ladder_severity


def _days_left(cert: CertificateSignal, now: dt.datetime) -> float | None:
    if cert.days_left is not None and math.isfinite(cert.days_left):
        return cert.days_left
    if cert.not_after is not None:  # days_left unknown or not a number: count from not_after
        return (fmt.aware(cert.not_after) - fmt.aware(now)).total_seconds() / 86400
    return None


def _expiry_text(days: float, cert: CertificateSignal) -> str:
    when = f" (not after {fmt.aware(cert.not_after).strftime('%Y-%m-%d %H:%M UTC')})" if cert.not_after else ""
    span = format_duration(dt.timedelta(days=abs(days)))
    if days < 0:
        return f"expired {span} ago{when}"
    if days == 0:
        return f"expired{when}"
    return f"expires in {span}{when}"


def check_certificates(snapshot: Snapshot, thresholds: Thresholds, out: Findings) -> None:
    """CertificateInvalid (SEV2; SEV1 when the certificate has also expired) and CertificateExpiring
    (days left on ``certificate_days_left``, lower is worse; 0 days or fewer is expired)."""
    for cert in sorted(snapshot.certificates, key=lambda c: (c.name, c.secret)):
        label = f"certificate {cert.name} (Secret {cert.secret})"
        days = _days_left(cert, snapshot.observed_at)
        problems: list[str] = []
        if not cert.present:
            problems.append("Secret missing")
        if cert.error:
            problems.append(fmt.clip(cert.error))
        if cert.key_matches is False:
            problems.append("private key does not match the certificate")
        if cert.chain_valid is False:
            problems.append("chain does not verify" + (f": {fmt.clip(cert.chain_error)}" if cert.chain_error else ""))
        # During a rollout the old pods serve the old certificate until they are replaced: that is
        # how a rotation under RollingRestart lands, not a fault (judged once the rollout is done).
        if cert.served_matches is False and not snapshot.workload.rolling_out:
            problems.append("the listener serves a different certificate (not reloaded?)")
        if problems:
            evidence = [f"{label}: {'; '.join(problems)}"]
            expired = days is not None and days <= 0
            if days is not None and expired:
                evidence.append(f"{label}: {_expiry_text(days, cert)}")
            out.add(
                Finding(
                    Category.CERTIFICATE_INVALID,
                    Severity.SEV1 if expired else Severity.SEV2,
                    f"Certificate {cert.name} invalid: {problems[0]}" + (" (and expired)" if expired else ""),
                    evidence=tuple(evidence),
                    subjects=(cert.name,),
                )
            )
        if days is None:
            continue
        severity = ladder_severity(days, thresholds.certificate_days_left, higher_is_worse=False)
        if severity is None:
            continue
        text = _expiry_text(days, cert)
        out.add(
            Finding(
                Category.CERTIFICATE_EXPIRING,
                severity,
                f"Certificate {cert.name} {text.split(' (', 1)[0]}",
                evidence=(f"{label}: {text}",),
                subjects=(cert.name,),
            )
        )
