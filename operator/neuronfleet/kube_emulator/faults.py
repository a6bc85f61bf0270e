"""Fault injection: make the next N matching requests fail or hang.

Operators must converge when the API server answers 409 Conflict, 500, or nothing for a while;
tests arm a :class:`Fault` and the emulator consumes it on the next matching requests.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any

__all__ = ["Fault", "FaultTable"]

_REASONS = {
    409: ("Conflict", "Operation cannot be fulfilled: the object has been modified (injected fault)"),
    429: ("TooManyRequests", "the server has received too many requests (injected fault)"),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request (injected fault)"),
    504: ("Timeout", "the server was unable to return a response in the time allotted (injected fault)"),
}


@dataclasses.dataclass
class Fault:
    """Answer ``status`` (after sleeping ``delay`` seconds) to the next ``times`` matches.

    ``method`` is an HTTP method or ``*``; ``path`` a regex searched in the path and query
    string. With ``status=None`` the request is only delayed, then served normally: a delay
    longer than the client's timeout is a timeout from the client's point of view.
    """

    method: str = "*"
    path: str = ""
    times: int = 1
    status: int | None = 500
    delay: float = 0.0
    hits: int = 0

    def __post_init__(self) -> None:
        self._regex = re.compile(self.path)

    def matches(self, method: str, path_qs: str) -> bool:
        return (self.method == "*" or self.method.upper() == method.upper()) and bool(self._regex.search(path_qs))

    @property
    def exhausted(self) -> bool:
        return self.hits >= self.times

    def body(self) -> dict[str, Any]:
        reason, message = _REASONS.get(self.status or 500, ("InternalError", "injected fault"))
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": self.status,
        }


class FaultTable:
    """Armed faults, consumed in arming order; safe to arm from another thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path_qs: str) -> Fault | None:
        """The first armed fault matching this request, with its hit counted."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.matches(method, path_qs):
                    fault.hits += 1
                    return fault
            self._faults = [f for f in self._faults if not f.exhausted]
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]
