"""Certificate issuance: re-issue a Zentinel's TLS certificate (from a CA Secret, self-signed, or by
asking cert-manager), verify it before it is installed, and roll the pods to load it."""

from __future__ import annotations

import datetime as dt

from ..core.certs import (
    fingerprint_sha256,
    issue_from_ca,
    key_type_of,
    read_tls_secret,
    self_signed,
    tls_secret_data,
    verify_pair,
)
from ..core.remediation import Step
from ..models.incident import CertificateChange
from ..models.zentinel import IssuerType, TLSRef
from ..names import ANN_RESTART, ANN_TLS
from .context import ActionError, ExecContext


def rotate_one(ref: TLSRef, ctx: ExecContext, dry: bool) -> tuple[str, CertificateChange]:
    """Re-issue one certificate; returns (the fingerprint before, what was issued)."""
    ns = ctx.zen.metadata.namespace
    secret = ctx.api.get_secret(ns, ref.secret_name)
    data = dict((secret or {}).get("data") or {})
    current = read_tls_secret(data)
    before = fingerprint_sha256(current.cert_pem) if current.cert_pem and not current.error else "none"
    if ref.issuer.type == IssuerType.CERT_MANAGER:
        # What `cmctl renew` does: set the Issuing condition; cert-manager re-issues.
        name = ref.issuer.certificate_name or ""
        if not dry:
            now = ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ")
            cert = ctx.api.get_certificate(ns, name)
            if cert is None:
                raise ActionError(f"cert-manager Certificate {name} does not exist")
            conds = [c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") != "Issuing"]
            conds.append(
                {
                    "type": "Issuing",
                    "status": "True",
                    "reason": "ManuallyTriggered",
                    "message": "Certificate re-issuance requested by the Zentinel incident operator",
                    "lastTransitionTime": now,
                    "observedGeneration": cert["metadata"].get("generation"),
                }
            )
            ctx.api.patch_certificate_status(ns, name, {"status": {"conditions": conds}})
        return before, CertificateChange(name=ref.name, issuer=ref.issuer.type)
    template = current.cert_pem if current.cert_pem and not current.error else None
    validity = dt.timedelta(days=90)
    if ref.issuer.type == IssuerType.CA_SECRET:
        ca_secret = ctx.api.get_secret(ns, ref.issuer.ca_secret_name or "")
        ca = read_tls_secret(dict((ca_secret or {}).get("data") or {}))
        if ca.cert_pem is None or ca.key_pem is None:
            raise ActionError(f"CA Secret {ref.issuer.ca_secret_name} has no tls.crt and tls.key")
        issued = issue_from_ca(
            template_cert_pem=template,
            sans=[],
            common_name=None,
            ca_cert_pem=ca.cert_pem,
            ca_key_pem=ca.key_pem,
            now=ctx.now,
            validity=validity,
        )
        ca_pem: bytes | None = ca.cert_pem
    else:  # SelfSigned, for development
        if template is None:
            raise ActionError(f"Secret {ref.secret_name} holds no certificate to copy the SANs from")
        from ..core.certs import inspect_certificate

        info = inspect_certificate(
            name=ref.name, secret=ref.secret_name, cert_pem=template, key_pem=None, ca_pem=None, now=ctx.now
        )
        issued = self_signed(
            sans=list(info.sans), common_name=None, key_type=key_type_of(template), now=ctx.now, validity=validity
        )
        ca_pem = None
    expected = None
    if template is not None:
        from ..core.certs import inspect_certificate

        expected = list(
            inspect_certificate(
                name=ref.name, secret=ref.secret_name, cert_pem=template, key_pem=None, ca_pem=None, now=ctx.now
            ).sans
        )
    problems = verify_pair(
        issued.fullchain_pem,
        issued.key_pem,
        ca_pem if ca_pem else issued.chain_pem,
        now=ctx.now,
        expected_sans=expected,
    )
    if problems:
        raise ActionError("the new certificate failed verification, not installed: " + "; ".join(problems))
    after = CertificateChange(name=ref.name, issuer=ref.issuer.type, fingerprint=fingerprint_sha256(issued.cert_pem))
    if not dry:
        new_data = tls_secret_data(issued)
        if ca_pem is None:
            new_data.pop("ca.crt", None)
        ctx.api.replace_secret_data(
            ns, ref.secret_name, new_data, ((secret or {}).get("metadata") or {}).get("resourceVersion")
        )
    return before, after


def rolled_for(installed: dict[str, str]) -> str:
    """The pod template annotation (:data:`ANN_TLS`) of a rolling restart that loads these certificates
    (name -> fingerprint): a rotation's verification waits for the rollout of this template."""
    return ",".join(f"{k}={v[:16]}" for k, v in sorted(installed.items()))


def rotate(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str, list[CertificateChange]]:
    names = [str(n) for n in step.params.get("certificates", [])]  # type: ignore[attr-defined]
    befores, afters = [], []
    changes: list[CertificateChange] = []
    for ref in ctx.zen.spec.tls:
        if ref.name not in names:
            continue
        before, change = rotate_one(ref, ctx, dry)
        befores.append(f"{ref.name}: {before[:16]}")
        changes.append(change)
        if change.fingerprint is None:
            afters.append(f"{ref.name}: re-issue requested from cert-manager Certificate {ref.issuer.certificate_name}")
        else:
            afters.append(f"{ref.name}: {change.fingerprint[:16]}")
    installed = {c.name: c.fingerprint for c in changes if c.fingerprint}
    how = ""
    if installed and not dry:
        # Zentinel reloads certificates with a config reload; a rolling restart is the sure way.
        ctx.api.patch_deployment(
            ctx.zen.metadata.namespace,
            ctx.zen.spec.workload.name,
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                ANN_TLS: rolled_for(installed),
                                ANN_RESTART: step.record.id if step.record else "",
                            }
                        }
                    }
                }
            },
        )
        how = f"; rolling restart of Deployment {ctx.zen.spec.workload.name} to load it"
    return "; ".join(befores), "; ".join(afters) + how, changes
