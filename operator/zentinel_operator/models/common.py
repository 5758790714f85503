"""Types shared by the custom resources."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

CATEGORY = "zentinel-all"  # no resource may be named like its category: kubectl expands categories first


def cel(
    rule: str,
    message: str | None = None,
    *,
    message_expression: str | None = None,
    field_path: str | None = None,
    reason: str | None = None,
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` rule: the API server refuses an object for which ``rule`` is false.

    ``field_path`` (relative to the object the rule sits on, e.g. ``.sev2``) makes kubectl's error name
    that field; ``message_expression`` builds the message from the object's values.
    """
    out = {"rule": rule}
    for key, value in (
        ("message", message),
        ("messageExpression", message_expression),
        ("fieldPath", field_path),
        ("reason", reason),
    ):
        if value is not None:
            out[key] = value
    return out


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules into the generated CRD (crdgen keeps the key as it is)."""
    return {"x-kubernetes-validations": list(rules)}


# Go-style durations as people write them in manifests: 30s, 5m, 1h30m, 2d. CEL's duration() knows
# no days, so the schema checks the form with a pattern; the length bound keeps CEL rules on
# durations within the API server's cost budget.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
DURATION_MAX_LENGTH = 32
# At most 5 digits before each unit (99999d at most per part; within 32 characters, under 1400 years
# in all): longer numbers would overflow the operator's date arithmetic (datetime stops at year 9999).
DURATION_MAX_DIGITS = 5
DURATION_TOO_LONG = rf"(^|[a-z])[0-9]{{{DURATION_MAX_DIGITS + 1},}}"
DURATION_DIGITS_MESSAGE = f"at most {DURATION_MAX_DIGITS} digits before each unit (use a larger unit: 7d, not 604800s)"
_DURATION_DIGITS = cel(f"!self.matches('{DURATION_TOO_LONG}')", DURATION_DIGITS_MESSAGE)
Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=DURATION_MAX_LENGTH,
        json_schema_extra={"x-zentinel-format": "duration", **validations(_DURATION_DIGITS)},
    ),
]
POSITIVE_DURATION_MESSAGE = "must be longer than zero"
# A duration that must be longer than zero. Its form is already the pattern's (digits, dots, units),
# so it is longer than zero exactly when some digit is not 0.
PositiveDuration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=DURATION_MAX_LENGTH,
        json_schema_extra={
            "x-zentinel-format": "duration",
            **validations(_DURATION_DIGITS, cel("self.matches('[1-9]')", POSITIVE_DURATION_MESSAGE)),
        },
    ),
]
# A non-negative resource quantity as the API server reads one (apimachinery's resource.Quantity).
_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


class KModel(BaseModel):
    """Base for every CRD model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
        validate_default=True,
    )

    def dump(self) -> dict[str, Any]:
        """The object as Kubernetes stores it (camelCase, no unset optional fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Severity(enum.StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        """1 is the worst; compare with ``<`` to find the more severe."""
        return int(self.value[-1])

    def worse_than(self, other: Severity) -> bool:
        return self.rank < other.rank


class Category(enum.StrEnum):
    PROCESS_CRASH = "ProcessCrash"
    HEALTH_CHECK_FAILURE = "HealthCheckFailure"
    UPSTREAM_FAILURE = "UpstreamFailure"
    HIGH_ERROR_RATE = "HighErrorRate"
    PERFORMANCE_DEGRADATION = "PerformanceDegradation"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    CERTIFICATE_EXPIRING = "CertificateExpiring"
    CERTIFICATE_INVALID = "CertificateInvalid"
    CONFIG_ERROR = "ConfigError"
    TRAFFIC_SPIKE = "TrafficSpike"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EXTERNAL_ALERT = "ExternalAlert"


class Source(enum.StrEnum):
    """Where an incident's signal comes from: the operator's own observation, or Alertmanager (the alert
    intake). An ``alertmanager`` incident resolves on what Alertmanager last said, not on the operator's signals."""

    OPERATOR = "operator"
    ALERTMANAGER = "alertmanager"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KModel):
    """A condition as the Kubernetes API conventions define it."""

    type: str = Field(description="Condition type, CamelCase (for example `Acknowledged`).")
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str = Field(
        default="",
        max_length=1024,
        description="One CamelCase word saying why the condition is in this status.",
    )
    message: str = Field(default="", max_length=32768, description="What a person should know, in a sentence.")
    last_transition_time: dt.datetime | None = Field(
        default=None, description="When `status` last changed (not when the message changed)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The `.metadata.generation` the condition was computed from."
    )


# Label syntax (apimachinery's validation): an optional DNS-subdomain prefix and a name of at most 63.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class LabelSelectorRequirement(KModel):
    # The schema and CEL refuse what core.policy_checks.check_selector reports; the Python model stays
    # lenient (json_schema_extra, not pydantic constraints) so that objects stored before these rules
    # still parse and show Accepted=False instead of failing every pass.
    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
                message_expression="'operator ' + self.operator + ' needs at least one value'",
                field_path=".values",
            ),
            cel(
                "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
                message_expression="'operator ' + self.operator + ' takes no values'",
                field_path=".values",
            ),
        )
    }

    key: str = Field(
        min_length=1,
        description="Label key.",
        json_schema_extra={"maxLength": 317, "pattern": LABEL_KEY_PATTERN},
    )
    operator: str = Field(
        description="`In`, `NotIn`, `Exists` or `DoesNotExist`.",
        # maxLength bounds the CEL messages that quote it (the API server's cost estimate).
        json_schema_extra={"enum": list(SELECTOR_OPERATORS), "maxLength": 16},
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for `In` and `NotIn`.",
        json_schema_extra={"items": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN}},
    )


class LabelSelector(KModel):
    """A standard Kubernetes label selector. Empty selects every Zentinel in the namespace."""

    match_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels that must all match.",
        # Values have a schema; keys of a map have none (checked by the admission webhook).
        json_schema_extra={"additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN}},
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements, all of which must hold."
    )


class SecretKeyRef(KModel):
    name: ObjectName = Field(description="Secret name, in the namespace of the object that refers to it.")
    key: str = Field(min_length=1, description="Key inside the Secret's data.")


class Meta(KModel):
    """The parts of ``metadata`` the operator reads."""

    name: str = ""
    namespace: str = ""
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: dt.datetime | None = None
    deletion_timestamp: dt.datetime | None = None


class CRDInfo:
    """Metadata that turns a model into a CustomResourceDefinition."""

    kind: ClassVar[str]
    plural: ClassVar[str]
    singular: ClassVar[str]
    short_names: ClassVar[list[str]]
    printer_columns: ClassVar[list[dict[str, Any]]]
    description: ClassVar[str]
    scope: ClassVar[str] = "Namespaced"  # or "Cluster"
