"""pydantic models of the custom resources: the source of truth for ``crds/``."""

from ..names import API_VERSION, GROUP, VERSION
from .common import CATEGORY, Category, Condition, ConditionStatus, Severity
from .incident import IncidentState, ZentinelIncident, ZentinelIncidentSpec, ZentinelIncidentStatus
from .policy import ZentinelClusterIncidentPolicy, ZentinelIncidentPolicy, ZentinelIncidentPolicySpec
from .silence import SilenceState, ZentinelSilence, ZentinelSilenceSpec
from .zentinel import Zentinel, ZentinelSpec, ZentinelStatus

ALL_KINDS = (Zentinel, ZentinelIncidentPolicy, ZentinelClusterIncidentPolicy, ZentinelIncident, ZentinelSilence)

__all__ = [
    "ALL_KINDS",
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "Category",
    "Condition",
    "ConditionStatus",
    "IncidentState",
    "Severity",
    "SilenceState",
    "Zentinel",
    "ZentinelClusterIncidentPolicy",
    "ZentinelIncident",
    "ZentinelIncidentPolicy",
    "ZentinelIncidentPolicySpec",
    "ZentinelIncidentSpec",
    "ZentinelIncidentStatus",
    "ZentinelSilence",
    "ZentinelSilenceSpec",
    "ZentinelSpec",
    "ZentinelStatus",
]
