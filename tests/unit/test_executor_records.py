"""The executor verifies a record from its typed fields (issue 12 step 2): nothing is parsed back from text."""

from __future__ import annotations

import dataclasses
import datetime as dt

from support.fake_api import FakeApi
from unit.test_remediation_plan import NOW, policy, snapshot, zen
from zentinel_operator.core.snapshot import CertificateSignal
from zentinel_operator.models.incident import CertificateChange, RemediationRecord
from zentinel_operator.models.zentinel import IssuerType
from zentinel_operator.names import ANN_TLS
from zentinel_operator.remediation.certificates import rolled_for
from zentinel_operator.remediation.executor import ExecContext, effect_in_place

FP = "ab" * 32


def exec_ctx(**snap_changes: object) -> ExecContext:
    snap = dataclasses.replace(snapshot(), **snap_changes)
    return ExecContext(zen=zen(), deployment=None, snapshot=snap, policy=policy(), now=NOW, api=FakeApi())


def record(action: str, **fields: object) -> RemediationRecord:
    return RemediationRecord(id=f"inc/0/{action}", action=action, mode="Automatic", state="Verifying", **fields)


def test_a_restart_of_stuck_pods_is_in_place_once_the_pods_it_deleted_are_gone() -> None:
    ctx = exec_ctx()  # edge-0..2, all Ready
    assert effect_in_place(record("restart", deleted_pods=["edge-9"]), ctx)
    assert not effect_in_place(record("restart", deleted_pods=["edge-1"]), ctx)  # still there
    # The text a person reads is not what is read back: without the field it is a rolling restart
    # (whose rollout this Deployment-less context cannot show).
    assert not effect_in_place(record("restart", after="deleted edge-9"), ctx)


def rolled(annotation: str | None, *, done: bool = True) -> dict[str, object]:
    """A Deployment whose pod template carries ``annotation`` as its certificate annotation."""
    ann = {ANN_TLS: annotation} if annotation is not None else {}
    status = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    if not done:  # the rolling restart is half way: an old pod is still there
        status = {**status, "replicas": 4, "updatedReplicas": 2}
    return {
        "metadata": {"name": "edge", "generation": 2},
        "spec": {"replicas": 3, "template": {"metadata": {"annotations": ann}}},
        "status": status,
    }


def test_a_rotation_is_in_place_when_the_secret_the_rollout_and_the_pods_hold_what_it_installed() -> None:
    cert = CertificateSignal(name="public", secret="edge-tls", present=True, fingerprint=FP, served_matches=True)
    installed = [CertificateChange(name="public", issuer=IssuerType.CA_SECRET, fingerprint=FP)]
    rec = record("certificateRotation", certificates=installed)
    ours = rolled(rolled_for({"public": FP}))

    def in_place(cert: CertificateSignal, deployment: dict[str, object] | None = ours, port: bool = False) -> bool:
        ctx = dataclasses.replace(exec_ctx(certificates=(cert,)), deployment=deployment)
        if port:
            tls = [t.model_copy(update={"port": 8443}) for t in ctx.zen.spec.tls]
            spec = ctx.zen.spec.model_copy(update={"tls": tls})
            ctx = dataclasses.replace(ctx, zen=ctx.zen.model_copy(update={"spec": spec}))
        return effect_in_place(rec, ctx)

    assert in_place(cert) and in_place(cert, port=True)
    assert not in_place(dataclasses.replace(cert, fingerprint="cd" * 32))  # the Secret holds something else
    assert not in_place(dataclasses.replace(cert, served_matches=False))  # a pod serves another certificate
    # No handshake with the new certificate yet (an event pass right after the Secret was written):
    # where the certificate has a TLS port, that is not proof; without one, the finished rollout is.
    unprobed = dataclasses.replace(cert, served_matches=None)
    assert not in_place(unprobed, port=True)
    assert in_place(unprobed)
    # The rolling restart that loads it: not finished, not this rotation's, or no Deployment.
    assert not in_place(cert, rolled(rolled_for({"public": FP}), done=False))
    assert not in_place(cert, rolled(rolled_for({"public": "cd" * 32})))
    assert not in_place(cert, rolled(None))
    assert not in_place(cert, None)
    # The certificate was not read this pass: nothing shows it is there.
    ctx = dataclasses.replace(exec_ctx(certificates=()), deployment=ours)
    assert not effect_in_place(rec, ctx)


def test_a_cert_manager_reissue_has_no_fingerprint_and_counts_as_requested() -> None:
    asked = [CertificateChange(name="edge", issuer=IssuerType.CERT_MANAGER)]
    assert effect_in_place(record("certificateRotation", certificates=asked), exec_ctx())
    assert not effect_in_place(record("certificateRotation"), exec_ctx())  # nothing recorded: nothing in place
    # A description naming cert-manager is for a person; it proves nothing.
    told = record("certificateRotation", after="edge: re-issue requested from cert-manager Certificate edge")
    assert not effect_in_place(told, exec_ctx())


def test_records_round_trip_their_typed_fields_through_the_wire_form() -> None:
    rec = record(
        "certificateRotation",
        certificates=[CertificateChange(name="edge", issuer=IssuerType.CA_SECRET, fingerprint=FP)],
        deleted_pods=["edge-0"],
    )
    wire = rec.dump()
    assert wire["certificates"] == [{"name": "edge", "issuer": "CASecret", "fingerprint": FP}]
    assert wire["deletedPods"] == ["edge-0"] and "config" not in wire
    assert RemediationRecord.model_validate(wire) == rec


def test_every_action_the_planner_runs_has_one_carrier() -> None:
    from zentinel_operator.core.remediation import Action
    from zentinel_operator.remediation import executor

    # A page is the notifier's; everything else on a ladder is carried out here.
    assert set(executor._ACTIONS) == set(Action) - {Action.PAGE}


def test_every_kind_of_step_has_one_handler() -> None:
    from zentinel_operator.core.remediation import StepKind
    from zentinel_operator.handlers import remediation as respond

    # An escalation may come without a record (a refusal) and is dispatched before the table.
    assert set(respond._BY_KIND) == set(StepKind) - {StepKind.ESCALATE}


def test_a_restart_counts_once_the_pods_it_left_have_stayed_ready() -> None:
    # The policy's verifyTimeout is 3 min: the pods must be Ready 10 s (core.remediation.restart_settle).
    snap = exec_ctx().snapshot
    rec = record("restart", deleted_pods=["edge-9"])

    def ready_for(seconds: float) -> ExecContext:
        since = NOW - dt.timedelta(seconds=seconds)
        return exec_ctx(pods=tuple(dataclasses.replace(p, ready_since=since) for p in snap.pods))

    assert not effect_in_place(rec, ready_for(1))  # Ready a moment: a crash loop's pods often are
    assert not effect_in_place(rec, ready_for(9))
    assert effect_in_place(rec, ready_for(10))


def test_a_pod_says_which_rotation_it_was_made_for_and_since_when_it_is_ready() -> None:
    from zentinel_operator.signals.pods import pod_signal, workload_signal

    pod = {
        "metadata": {"name": "edge-0", "annotations": {ANN_TLS: "public=abab"}},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-27T02:59:50Z"}],
        },
    }
    signal = pod_signal(pod, None, None)
    assert signal.ready_since == NOW - dt.timedelta(seconds=10) and signal.tls_rolled == "public=abab"
    assert signal.settled(NOW, dt.timedelta(seconds=10)) and not signal.settled(NOW, dt.timedelta(seconds=11))
    assert pod_signal({"metadata": {"name": "x"}, "status": {}}, None, None).ready_since is None
    current = workload_signal(rolled("public=abab"), None)
    assert signal.loads_current_certificates(current)
    assert not signal.loads_current_certificates(workload_signal(rolled("public=cdcd"), None))
    old = pod_signal({**pod, "metadata": {"name": "edge-1"}}, None, None)  # made before any rotation
    assert not old.loads_current_certificates(current)
