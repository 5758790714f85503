"""The only module with kopf decorators. Each handler is a short call into domain code."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf

from . import config, k8s, login, webhook
from . import operator_metrics as metrics
from .api import KubeApi
from .core import watch_map
from .core.policy_checks import check_policy_beyond_schema
from .handlers import policies as policy_handlers
from .handlers import silences as silence_handlers
from .handlers import zentinel as zentinel_handlers
from .names import CLUSTER_POLICIES, GROUP, INCIDENTS, POLICIES, SILENCES, VERSION, ZENTINELS
from .notify import acks, intake
from .notify.dispatch import Dispatcher
from .scheduler import PassScheduler
from .signals.gather import GatherSettings
from .signals.prometheus import PrometheusSource

SETTINGS = config.load()
# With shard_count > 1, this operator serves the Zentinels of its shard only (core/shards.py).
SHARD = SETTINGS.shard()


def _mine(namespace: str | None, name: str | None, **_: Any) -> bool:
    """A Zentinel of this shard."""
    return SHARD.owns(namespace, name)


def _coordinator(**_: Any) -> bool:
    """Shard 0 reconciles what is no one Zentinel's (policies, cluster policies, silences)."""
    return SHARD.coordinator


@kopf.on.login()
def kopf_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own requests carry the operator's user agent, so its writes are filed under our field manager."""
    return login.login(**kwargs)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Framework state goes to annotations, so every status field is ours and schema-checked.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=SETTINGS.kopf_prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=SETTINGS.kopf_prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = SHARD.finalizer(f"{SETTINGS.kopf_prefix}/finalizer")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = SETTINGS.watch_timeout
    # kopf's own peering is off: one active replica comes from the Lease this process holds (leader.py).
    settings.peering.standalone = True
    if SETTINGS.webhook_enabled:
        settings.admission.server = webhook.server(SETTINGS)
        settings.admission.managed = "validating.zentinel.io" if SETTINGS.webhook_managed else None
    k8s.configure()
    metrics.serve(SETTINGS.metrics_port, SETTINGS.metrics_addr)
    memo.settings = SETTINGS
    memo.passes = zentinel_handlers.PassContext(
        api=KubeApi(),
        operator_namespace=SETTINGS.operator_namespace(),
        gather=GatherSettings(
            scrape_timeout=SETTINGS.scrape_timeout,
            scrape_concurrency=SETTINGS.scrape_concurrency,
            scrape_max_bytes=SETTINGS.scrape_max_bytes,
            # Reads are reused only where the watches of the event passes report every change to them.
            reads_resync=SETTINGS.reads_resync if SETTINGS.event_passes else 0.0,
        ),
    )
    if SETTINGS.prometheus_url:
        memo.passes.prometheus = PrometheusSource(
            SETTINGS.prometheus_url,
            window_seconds=SETTINGS.prometheus_window,
            timeout=SETTINGS.scrape_timeout,
            refresh_seconds=SETTINGS.scan_interval,
            pod_label=SETTINGS.prometheus_pod_label,
            namespace_label=SETTINGS.prometheus_namespace_label,
        )
    # Slack messages carry Acknowledge/Resolve buttons once the operator can verify the presses.
    memo.passes.notifier = Dispatcher(
        slack_buttons=bool(SETTINGS.alert_intake_port and SETTINGS.alert_intake_slack_secret_file)
    )
    memo.passes.alerts = intake.AlertState()


@kopf.on.startup()
async def start_passes(memo: kopf.Memo, **kwargs: Any) -> None:
    """The pass scheduler (its workers run the event passes, when they are on; its per-Zentinel locks keep any two
    passes of one Zentinel apart) and the alert intake: Alertmanager's webhook (bearer token), PagerDuty's
    webhooks and Slack's buttons (signed), secrets from files. kopf's indexes are live: the ones handed over
    now are the ones kept current."""
    policies: kopf.Index[str, dict[str, Any]] = kwargs["policy_index"]
    silences: kopf.Index[str, dict[str, Any]] = kwargs["silence_index"]
    cluster_policies: kopf.Index[str, dict[str, Any]] = kwargs["cluster_policy_index"]

    async def run(ns: str, name: str) -> zentinel_handlers.PassResult | None:
        return await zentinel_handlers.pass_on_stored(
            ns,
            name,
            ctx=memo.passes,
            policies=list(policies.get(ns, [])),
            cluster_policies=list(cluster_policies.get("", [])),
            silences=list(silences.get(ns, [])),
            full=False,
        )

    async def event_pass(key: Any) -> None:
        try:
            result = await run(*key)
        except Exception:
            metrics.PASS_ERRORS.inc()
            raise
        if result is None:  # the Zentinel is gone
            memo.scheduler.forget(key)

    async def alert_pass(ns: str, name: str, update: Callable[[], None]) -> intake.Passed:
        # The alerts' signals are set and recorded under the Zentinel's lock: no other pass of it sees them first.
        async with memo.scheduler.exclusive((ns, name)):
            update()
            result = await run(ns, name)
        if result is None:
            return intake.Passed(reason=f"no Zentinel {ns}/{name}")
        if result.recorded is None:
            raise RuntimeError("the Incidents stage failed")
        return intake.Passed(carriers=dict(result.recorded.carriers), created=frozenset(result.recorded.created))

    memo.scheduler = PassScheduler(event_pass, debounce=SETTINGS.event_debounce, concurrency=SETTINGS.event_concurrency)
    if SETTINGS.event_passes:
        memo.scheduler.start()
    memo.intake = None
    app = acks.build_intake(SETTINGS, memo.passes.alerts, run_pass=alert_pass, owns=SHARD.owns)
    if app is not None:
        memo.intake = await intake.serve(SETTINGS.alert_intake_addr, SETTINGS.alert_intake_port, app=app)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("scheduler") is not None:
        await memo.scheduler.stop()
    await memo.passes.close()
    if memo.passes.notifier is not None:
        await memo.passes.notifier.stop()
    if memo.get("intake") is not None:
        await memo.intake.cleanup()


@kopf.on.probe(id="alive")
def alive(**_: Any) -> bool:
    return True


# ------------------------------------------------------------------------------- indexes
@kopf.index(GROUP, VERSION, POLICIES)
def policy_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {namespace or "": dict(body)}


# Cluster-scoped: one key for all of them.
@kopf.index(GROUP, VERSION, CLUSTER_POLICIES)
def cluster_policy_index(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {"": dict(body)}


@kopf.index(GROUP, VERSION, SILENCES)
def silence_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {namespace or "": dict(body)}


@kopf.index(GROUP, VERSION, ZENTINELS)
def zentinel_index(
    namespace: str | None, name: str, labels: kopf.Labels, **_: Any
) -> dict[str, tuple[str, dict[str, str]]]:
    return {namespace or "": (name, dict(labels))}


# ------------------------------------------------------------------------------ Zentinels
@kopf.timer(GROUP, VERSION, ZENTINELS, interval=SETTINGS.scan_interval, initial_delay=0.0, when=_mine)
async def zentinel_pass(body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    policies: kopf.Index[str, dict[str, Any]] = kwargs["policy_index"]
    cluster_policies: kopf.Index[str, dict[str, Any]] = kwargs["cluster_policy_index"]
    silences: kopf.Index[str, dict[str, Any]] = kwargs["silence_index"]
    ns = namespace or ""
    held = list(silences.get(ns, []))
    try:
        governing = list(cluster_policies.get("", []))

        async def timer_pass() -> None:
            # On the Zentinel as the last pass left it: kopf's copy may not show that pass's status write yet.
            await zentinel_handlers.pass_on_stored(
                ns,
                name,
                ctx=memo.passes,
                policies=list(policies.get(ns, [])),
                cluster_policies=governing,
                silences=held,
                full=True,
                watched=body,
            )

        async with memo.scheduler.exclusive((ns, name)):  # never beside another pass of this Zentinel
            await timer_pass()
    except Exception:
        metrics.PASS_ERRORS.inc()
        raise


if SETTINGS.event_passes:
    # Event passes (scheduler.py): a change to what a Zentinel's pass reads starts that pass at once. The
    # handlers ask for passes and mark what the passes read as out of date (PassMemory.changed: quiet reads are
    # reused only until then); each filter lets through only events concerning a Zentinel (core.watch_map), so
    # nothing is logged for the rest of the cluster. A listing's events (type None) ask for no pass: the
    # timer's first pass reads it all.
    @kopf.index(GROUP, VERSION, ZENTINELS)
    def watched_index(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[str, watch_map.Watched] | None:
        refs = watch_map.watched(body) if SHARD.owns(namespace, name) else None
        return {namespace or "": refs} if refs is not None else None

    @kopf.index("apps", "v1", "deployments")
    def workload_index(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        return {namespace or "": (name, dict(spec.get("selector") or {}))}

    def _concerned(kind: watch_map.Kind, kwargs: dict[str, Any]) -> list[str]:
        ns = kwargs.get("namespace") or ""
        zentinels = list(kwargs["watched_index"].get(ns, []))
        if not zentinels:
            return []
        selectors = dict(kwargs["workload_index"].get(ns, [])) if kind == watch_map.Kind.POD else {}
        return watch_map.concerned(kind, kwargs["name"], dict(kwargs.get("labels") or {}), zentinels, selectors)

    def _watch(kind: watch_map.Kind, group: str, plural: str) -> None:
        def concerns(**kwargs: Any) -> bool:
            return bool(_concerned(kind, kwargs))

        async def changed(event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
            # Every event makes what the passes read out of date, a (re)listing's too (event type None: after a
            # watch is restarted, the changes it missed come so); only real changes start a pass.
            ns = kwargs.get("namespace") or ""
            for zentinel in _concerned(kind, kwargs):
                memo.passes.changed(ns, zentinel)
                if event.get("type") is not None:
                    memo.scheduler.request((ns, zentinel))

        kopf.on.event(group, "v1", plural, id=f"{plural}-changed", when=concerns)(changed)

    # Of a Secret only the name is used: its data goes no further than kopf's watch.
    for kind, group, plural in (
        (watch_map.Kind.POD, "", "pods"),
        (watch_map.Kind.DEPLOYMENT, "apps", "deployments"),
        (watch_map.Kind.CONFIGMAP, "", "configmaps"),
        (watch_map.Kind.SECRET, "", "secrets"),
    ):
        _watch(kind, group, plural)


def _new_generation_or_gone(event: kopf.RawEvent, namespace: str | None, name: str, **_: Any) -> bool:
    """One of this shard's Zentinels, deleted or at a new generation."""
    obj = event["object"]
    generation = (obj.get("metadata") or {}).get("generation")
    return SHARD.owns(namespace, name) and (
        event["type"] == "DELETED"
        or (event["type"] is not None and generation != (obj.get("status") or {}).get("observedGeneration"))
    )


@kopf.on.event(GROUP, VERSION, ZENTINELS, when=_new_generation_or_gone)
async def zentinel_changed(event: kopf.RawEvent, memo: kopf.Memo, namespace: str | None, name: str, **_: Any) -> None:
    """A deleted Zentinel is forgotten (what passes kept about it, and any pass owed to it); with event passes on,
    a new generation (a spec edit) is passed over at once. The status the passes write changes no generation,
    so it starts nothing."""
    key = (namespace or "", name)
    if event["type"] == "DELETED":
        memo.scheduler.forget(key)
        memo.passes.forget(*key)
    elif SETTINGS.event_passes:
        memo.scheduler.request(key)


# ------------------------------------------------------------------------------- policies
@kopf.timer(GROUP, VERSION, POLICIES, interval=max(SETTINGS.scan_interval, 5.0), initial_delay=0.0, when=_coordinator)
def policy_pass(body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
    zentinels: kopf.Index[str, tuple[str, dict[str, str]]] = kwargs["zentinel_index"]
    policies: kopf.Index[str, dict[str, Any]] = kwargs["policy_index"]
    cluster_policies: kopf.Index[str, dict[str, Any]] = kwargs["cluster_policy_index"]
    ns = namespace or ""
    policy_handlers.reconcile(
        body,
        zentinels=list(zentinels.get(ns, [])),
        policies=list(policies.get(ns, [])),
        cluster_policies=list(cluster_policies.get("", [])),
        api=kwargs["memo"].passes.api,
    )


@kopf.timer(
    GROUP, VERSION, CLUSTER_POLICIES, interval=max(SETTINGS.scan_interval, 5.0), initial_delay=0.0, when=_coordinator
)
def cluster_policy_pass(body: kopf.Body, **kwargs: Any) -> None:
    zentinels: kopf.Index[str, tuple[str, dict[str, str]]] = kwargs["zentinel_index"]
    policies: kopf.Index[str, dict[str, Any]] = kwargs["policy_index"]
    cluster_policies: kopf.Index[str, dict[str, Any]] = kwargs["cluster_policy_index"]
    policy_handlers.reconcile_cluster(
        body,
        zentinels={ns: list(store) for ns, store in zentinels.items()},
        policies={ns: list(store) for ns, store in policies.items()},
        cluster_policies=list(cluster_policies.get("", [])),
        api=kwargs["memo"].passes.api,
    )


# ------------------------------------------------------------------------------- silences
# State (Pending, Active, Expired) for people; the pass works activity out from the spec and the clock itself.
@kopf.timer(GROUP, VERSION, SILENCES, interval=SETTINGS.scan_interval, initial_delay=0.0, when=_coordinator)
def silence_pass(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    silence_handlers.reconcile(body, api=memo.passes.api)


# ------------------------------------------------------------------------------ incidents
def _incident_of_mine(event: kopf.RawEvent, **_: Any) -> bool:
    obj = event["object"]
    zentinel = ((obj.get("spec") or {}).get("zentinelRef") or {}).get("name")
    return SHARD.owns((obj.get("metadata") or {}).get("namespace"), zentinel)


# Each shard counts the open incidents of its own Zentinels, so the shards' gauges add up.
@kopf.on.event(GROUP, VERSION, INCIDENTS, when=_incident_of_mine)
def incident_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = event["object"]
    meta = obj.get("metadata", {})
    zentinel = ((obj.get("spec") or {}).get("zentinelRef") or {}).get("name")
    if zentinel:  # a quiet pass's list of this Zentinel's incidents is out of date
        memo.passes.changed(meta.get("namespace", ""), zentinel)
    if event["type"] == "DELETED":
        metrics.OPEN_INCIDENTS.forget(meta.get("namespace", ""), meta.get("name", ""))
    else:
        metrics.OPEN_INCIDENTS.update(
            meta.get("namespace", ""), meta.get("name", ""), obj.get("status"), obj.get("spec")
        )


# ------------------------------------------------------------------------------ admission
if SETTINGS.webhook_enabled:
    # The id doubles as the webhook path (/validate-policy): the chart's webhook configuration points at it.
    # Zentinels have no webhook: their CRD's schema and CEL rules refuse everything the operator would.
    @kopf.on.validate(GROUP, VERSION, POLICIES, id="validate-policy", operations=["CREATE", "UPDATE"])
    def validate_policy(spec: kopf.Spec, **_: Any) -> None:
        _refuse_bad_policy(spec)

    # The same checks for cluster policies (same spec model); path /validate-cluster-policy.
    @kopf.on.validate(GROUP, VERSION, CLUSTER_POLICIES, id="validate-cluster-policy", operations=["CREATE", "UPDATE"])
    def validate_cluster_policy(spec: kopf.Spec, **_: Any) -> None:
        _refuse_bad_policy(spec)


def _refuse_bad_policy(spec: kopf.Spec) -> None:
    # The CRD's CEL rules refuse everything else before the API server calls this webhook.
    problems = check_policy_beyond_schema(dict(spec))
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)
