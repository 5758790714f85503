"""Which replica set owns a Zentinel: shards by a stable hash of its namespace and name.

With ``count`` shards, a Zentinel belongs to shard ``sha256("<namespace>/<name>") mod count``, whatever
the replica, the process or the Python version (``hash()`` is salted per process, so it is not used). Each
Zentinel belongs to exactly one shard; a shard's operator passes over, watches for and records incidents of
its own Zentinels only. Shard 0 also reconciles what is not any one Zentinel's (policies, silences).
"""

from __future__ import annotations

import dataclasses
import hashlib


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be in 0..{self.count - 1} (count {self.count}), got {self.index}")

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def coordinator(self) -> bool:
        """Whether this shard reconciles the objects no one Zentinel owns (policies, cluster policies, silences)."""
        return self.index == 0

    def owns(self, namespace: str | None, name: str | None) -> bool:
        return not self.sharded or shard_of(namespace or "", name or "", self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def finalizer(self, base: str) -> str:
        """kopf's finalizer for this shard: ``base`` for shard 0 (and for one shard), ``<base>-shard-<i>`` else.

        kopf takes its finalizer off every object none of its handlers match, and a shard's timer matches its
        own Zentinels only: with one name for all, the shards would take it off and put it back on each other's
        Zentinels forever. Shard 0 keeps the unsharded name, so going from one shard to several moves nothing.
        """
        return base if self.index == 0 else f"{base}-shard-{self.index}"


def is_finalizer_of_a_shard(finalizer: str, base: str) -> bool:
    """Whether ``finalizer`` is :meth:`Shard.finalizer` of ``base`` for some shard."""
    suffix = finalizer.removeprefix(f"{base}-shard-")
    return finalizer == base or (suffix != finalizer and suffix.isdigit())


def shard_of(namespace: str, name: str, count: int) -> int:
    """The shard of the Zentinel ``namespace/name`` among ``count``."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
