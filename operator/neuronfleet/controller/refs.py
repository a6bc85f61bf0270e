"""Where a kind lives in the Kubernetes API, as plain data shared by the pure core and the client."""

from __future__ import annotations

import dataclasses

__all__ = ["ResourceRef"]


@dataclasses.dataclass(frozen=True)
class ResourceRef:
    """Group ("" for core), version and plural of a resource."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version
