"""``zentinelctl`` and ``kubectl zentinel`` (the same program, installed under both names).

Commands: ``incidents`` (``-w`` to follow), ``show``, ``ack``, ``resolve``, ``approve``, ``postmortem``,
``evidence``, ``triage``, ``notify test`` (:mod:`.notifytest`) and ``completion`` (:mod:`.completion`);
``--help`` on each lists its options and the exit codes (:mod:`.exits`). ``-o`` takes kubectl's
formats, ``jsonpath=`` templates included (:mod:`.jsonpath`); ``--as``/``--as-group`` impersonate.
Rendering is pure (:mod:`.render`, :mod:`.evidence`, :mod:`.triage`, :mod:`.jsonpath`); the API is
reached through :mod:`zentinel_operator.k8s` behind :class:`.kube.Api`.
"""

from .app import build_parser, main
from .exits import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TRIAGE,
    EXIT_UNVERIFIED,
    EXIT_USAGE,
    CliError,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_TRIAGE",
    "EXIT_UNVERIFIED",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]
