"""Which runtime a demand asks for, and what a GPU offer says about its card.

Golem providers rent graphics cards through the ``vm-nvidia`` runtime (a VM with the
card passed through), advertised with the ``!exp:gpu`` capability: ``gpu=True`` asks
for both, as golem-js' ``runtime: {name: "vm-nvidia"}`` with ``capabilities:
["!exp:gpu"]`` does. The card is described by the experimental GAP-35 properties
(``golem.!exp.gap-35.v1.inf.gpu.*``); newer providers list each card under ``d0``,
``d1``... with a ``quantity``, and the AI runtime uses ``golem.inf.gpu.d0.*``.
:func:`gpu_of` reads all three.

A GPU runtime may also price GPU time (``golem.usage.gpu-sec``, the AI runtime) on top
of the time the activity exists: :func:`hour_price` counts both, so the per-hour price
cap (``max_env_hour_price``) bounds what an hour of the environment can cost.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional, Tuple

from ....errors import ConfigurationError
from ...gpu import GpuInfo
from .models import LinearPricing

VM_RUNTIME = "vm"
GPU_RUNTIME = "vm-nvidia"
GPU_CAPABILITY = "!exp:gpu"

#: GAP-35, experimental: the first card's properties (ya-runtime-vm-nvidia).
GAP35_GPU = "golem.!exp.gap-35.v1.inf.gpu"
#: Where offers describe a card, newest layout first: per device (``d0`` is the first,
#: with ``quantity`` cards of that model), the single-card GAP-35 layout, and the
#: non-experimental names of the AI runtime.
_CARD_PREFIXES = (f"{GAP35_GPU}.d0", GAP35_GPU, "golem.inf.gpu.d0", "golem.inf.gpu")

#: Usage counters that grow with the time an activity exists: the VM's duration, and
#: the GPU time of runtimes that price it (at most the duration, so an upper bound).
DURATION_SEC = "golem.usage.duration_sec"
GPU_SEC = "golem.usage.gpu-sec"
HOURLY_COUNTERS = (DURATION_SEC, GPU_SEC)

#: A runtime name or capability goes into an LDAP-like constraint as it is: none of
#: the filter's special characters, no spaces.
_NAME = re.compile(r"[A-Za-z0-9!][A-Za-z0-9!:._-]*")


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def gpu_of(properties: Mapping[str, Any]) -> Optional[GpuInfo]:
    """The card an offer describes, or None for an offer without one."""
    for prefix in _CARD_PREFIXES:
        model = properties.get(f"{prefix}.model")
        if not isinstance(model, str) or not model.strip():
            continue
        quantity = properties.get(f"{prefix}.quantity")
        count = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 1 else 1
        root = prefix[:-len(".d0")] if prefix.endswith(".d0") else prefix
        cuda = properties.get(f"{prefix}.cuda.version", properties.get(f"{root}.cuda.version"))
        return GpuInfo(model=model.strip(), memory_gib=_number(properties.get(f"{prefix}.memory.total.gib")),
                       count=count, cuda_version=None if cuda is None else str(cuda))
    return None


def hour_price(pricing: LinearPricing) -> Decimal:
    """GLM per hour the activity exists: the duration price, plus the GPU-time price
    of runtimes that have one (as if the card were busy the whole hour)."""
    return sum((pricing.per_usage.get(name, Decimal(0)) for name in HOURLY_COUNTERS), Decimal(0)) * 3600


def resolve_runtime(runtime: Optional[str], capabilities: Iterable[str], gpu: bool) -> Tuple[str, Tuple[str, ...]]:
    """The runtime name and capabilities a demand asks for.

    ``runtime=None`` means ``vm``, or ``vm-nvidia`` with ``gpu=True``; ``gpu=True`` adds
    the ``!exp:gpu`` capability.

    Raises:
        ConfigurationError: ``gpu`` is not a bool, ``gpu=True`` with a runtime that rents
            no card, a runtime or capability that is not a plain name, or capabilities
            given as one string.
    """
    if not isinstance(gpu, bool):
        raise ConfigurationError(f"gpu must be True or False, got {gpu!r}")
    names = _capabilities(capabilities)
    if runtime is None:
        runtime = GPU_RUNTIME if gpu else VM_RUNTIME
    if not isinstance(runtime, str) or not _NAME.fullmatch(runtime):
        raise ConfigurationError(f"runtime must be a runtime name such as {VM_RUNTIME!r} or {GPU_RUNTIME!r}, "
                                 f"got {runtime!r}")
    if gpu and runtime != GPU_RUNTIME:
        raise ConfigurationError(f"gpu=True rents a card through the {GPU_RUNTIME!r} runtime, but runtime={runtime!r}: "
                                 f"drop runtime= (or give runtime={GPU_RUNTIME!r})")
    if gpu and GPU_CAPABILITY not in names:
        names += (GPU_CAPABILITY,)
    return runtime, names


def _capabilities(capabilities: Iterable[str]) -> Tuple[str, ...]:
    if isinstance(capabilities, (str, bytes)):
        raise ConfigurationError(f"capabilities must be a list of names, got the string {capabilities!r}: "
                                 f"use capabilities=[{capabilities!r}]")
    try:
        names = tuple(capabilities)
    except TypeError:
        raise ConfigurationError(f"capabilities must be a list of names such as ['vpn', {GPU_CAPABILITY!r}], "
                                 f"got {capabilities!r}") from None
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"capabilities must be plain names such as 'vpn' or {GPU_CAPABILITY!r} "
                                     f"(as offers list them in golem.runtime.capabilities), got {name!r}")
        if name.lower() in ("gpu", "exp:gpu", "!gpu"):
            raise ConfigurationError(f"capability {name!r} is not one providers list: the GPU capability is "
                                     f"{GPU_CAPABILITY!r} (or pass gpu=True)")
    return tuple(dict.fromkeys(names))
