"""A local provider's graphics card, advertised as ya-runtime-vm-nvidia does: the
``vm-nvidia`` runtime, the ``!exp:gpu`` capability and the card's GAP-35 properties.

Nothing is passed through: commands run in the local sandbox like every localnet
command, so the offer and the whole negotiation are real and CUDA is not.
"""

from __future__ import annotations

from typing import Any, Dict

from ...providers.gpu import GpuInfo

GPU_RUNTIME = "vm-nvidia"
GPU_CAPABILITY = "!exp:gpu"
_GAP35 = "golem.!exp.gap-35.v1.inf.gpu"


def card_properties(card: GpuInfo) -> Dict[str, Any]:
    """The offer properties of ``card``, flattened as the market shows them: the
    single-card GAP-35 layout for one card, the per-device one (``d0`` with its
    ``quantity``) for several."""
    prefix = _GAP35 if card.count == 1 else f"{_GAP35}.d0"
    properties: Dict[str, Any] = {f"{prefix}.model": card.model, f"{prefix}.cuda.enabled": True}
    if card.count > 1:
        properties[f"{prefix}.quantity"] = card.count
    if card.memory_gib is not None:
        properties[f"{prefix}.memory.total.gib"] = float(card.memory_gib)
    if card.cuda_version is not None:
        properties[f"{_GAP35}.cuda.version"] = card.cuda_version
    return properties
