"""The REAPI instance names a bridge serves, from its configuration."""

from __future__ import annotations

from typing import Dict, Iterable

from reapi_bridge.config import InstanceConfig
from reapi_bridge.common.errors import NotFound


class InstanceRegistry:
    def __init__(self, instances: Iterable[InstanceConfig]) -> None:
        self._by_name: Dict[str, InstanceConfig] = {i.name: i for i in instances}

    def require(self, name: str) -> InstanceConfig:
        inst = self._by_name.get(name)
        if inst is None:
            served = ", ".join(repr(n) for n in sorted(self._by_name))
            raise NotFound(f"instance {name!r} is not served by this bridge (served: {served})")
        return inst

    def names(self):
        return sorted(self._by_name)
