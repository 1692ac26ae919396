"""A value object without ``dataclasses``: equality, hash and repr from ``__slots__``.

``import dataclasses`` pulls in ``inspect`` (with ``ast``, ``dis`` and ``tokenize``) on
every ``gx`` call that takes a lock. Start-up: saves over 0.1 S on gx commit (docs/benchmark.md,
"Start-up tricks"). The few records that path builds (lock keys, ticket names, the
repository layout, process identities) derive from :class:`Value` instead and write
their ``__init__`` by hand. They are treated as immutable: nothing assigns to them after
construction (``cached_property`` needs a ``__dict__``, so a class may add one).
"""

from __future__ import annotations


class Value:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"
