"""A provider's graphics card, as its offer describes it: what a person reads in the
market scan, the job summary and :attr:`ProviderInfo.gpu`.

Backends fill it in (the Golem backend parses the offer's GAP-35 properties, see
:mod:`golem_tasks.providers.yagna.market.runtime`); nothing here talks to a card.
"""

from __future__ import annotations

from typing import Optional

import attrs


@attrs.frozen(kw_only=True)
class GpuInfo:
    """One provider's GPU(s).

    Attributes:
        model: the card's model name, e.g. ``NVIDIA GeForce RTX 3090``.
        memory_gib: memory of one card in GiB; None when the offer does not say.
        count: how many such cards the provider rents out together.
        cuda_version: the CUDA version the provider guarantees; None when not said.
    """

    model: str
    memory_gib: Optional[float] = None
    count: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    cuda_version: Optional[str] = None

    @property
    def label(self) -> str:
        """``NVIDIA GeForce RTX 3090 24 GiB`` (``2x`` in front for two cards)."""
        text = self.model if self.count == 1 else f"{self.count}x {self.model}"
        return text if self.memory_gib is None else f"{text} {self.memory_gib:g} GiB"
