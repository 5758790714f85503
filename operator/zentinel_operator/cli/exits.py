"""Exit codes of ``zentinelctl`` / ``kubectl zentinel``, and the error that carries one."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # the API, the network or a file failed; the message says which
EXIT_USAGE = 2  # bad arguments or a bad input file (argparse's own code)
EXIT_NOT_FOUND = 3  # the incident, Zentinel, post-mortem draft or evidence does not exist
EXIT_REFUSED = 4  # refused or nothing to do: already resolved, already acknowledged, nothing pending
EXIT_UNVERIFIED = 5  # evidence exported, but it does not match its MANIFEST.json
EXIT_TRIAGE = 10  # triage: 10 + the worst severity (11 SEV1 ... 14 SEV4); 0 when healthy

EPILOG = """\
exit codes:
  0   ok (triage: healthy, no finding)
  1   error: the API, the network or a file failed
  2   usage: bad arguments or a bad --policy file
  3   not found: incident, Zentinel, post-mortem draft or evidence
  4   refused, nothing to do: already resolved or acknowledged, nothing pending approval
  5   evidence exported but not verified: a file differs from MANIFEST.json or is missing
  11-14  triage found trouble: 10 + the worst severity (11 = SEV1, 12 = SEV2, 13 = SEV3, 14 = SEV4)
"""


class CliError(Exception):
    """A failure to report in one line, with the exit code that says what kind."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
