"""What a local provider offers: resources, runtime, prices, payment platform.

The property names and shapes are those of ya-provider 0.17 offers (a ``vm`` runtime with
linear pricing over cpu seconds and duration), so a requestor sees the same market
it would see on the real network.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Optional, Tuple

import attrs

from ...providers.gpu import GpuInfo
from . import gpu as _gpu
from .outbound import CAPABILITIES

#: The usage counters a ``vm`` offer prices; the order matches the coefficients.
USAGE_VECTOR = ("golem.usage.cpu_sec", "golem.usage.duration_sec")


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


@attrs.frozen(kw_only=True)
class OfferSpec:
    """One provider's offer.

    Attributes:
        mem_gib, storage_gib, threads, cores: advertised resources (``golem.inf.*``).
        runtime: ``golem.runtime.name``; SDKs ask for ``vm``.
        price_cpu_sec, price_duration_sec, price_start: linear pricing coefficients in GLM.
        platform: the payment platform, e.g. ``erc20-hoodi-tglm`` (the default).
        subnet: ``golem.node.debug.subnet``; SDKs default to ``public``.
        debit_note_interval: seconds between debit notes while an activity runs.
        payment_timeout: with it, the offer proposes mid-agreement payments: each debit
            note is due (``paymentDueDate``) this many seconds after it is issued, if the
            requestor agrees (``golem.com.scheme.payu.payment-timeout-sec?``).
        accept_timeout: the longest debit-note acceptance deadline the provider agrees to.
        gpu: a graphics card to advertise (with ``runtime="vm-nvidia"``), as
            :mod:`.gpu` writes it; commands still run in the local sandbox, no CUDA.
        inet: advertise the ``inet`` and ``manifest-support`` capabilities, as
            ya-runtime-vm does (False plays a runtime that cannot serve outbound=).
    """

    mem_gib: float = attrs.field(default=4.0, validator=attrs.validators.gt(0))
    storage_gib: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    threads: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    cores: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    runtime: str = "vm"
    price_cpu_sec: Decimal = attrs.field(default=Decimal("0.0001"), converter=_decimal)
    price_duration_sec: Decimal = attrs.field(default=Decimal("0.00002"), converter=_decimal)
    price_start: Decimal = attrs.field(default=Decimal(0), converter=_decimal)
    platform: str = "erc20-hoodi-tglm"
    subnet: str = "public"
    debit_note_interval: int = attrs.field(default=120, validator=attrs.validators.ge(1))
    payment_timeout: Optional[int] = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    accept_timeout: int = attrs.field(default=240, validator=attrs.validators.ge(5))
    inet: bool = True
    gpu: Optional[GpuInfo] = attrs.field(default=None)

    @gpu.validator
    def _gpu_runtime(self, attribute: Any, value: Optional[GpuInfo]) -> None:
        if value is not None and self.runtime != _gpu.GPU_RUNTIME:
            raise ValueError(f"a GPU is offered through runtime={_gpu.GPU_RUNTIME!r}, not {self.runtime!r}")

    @property
    def coeffs(self) -> Tuple[Decimal, Decimal, Decimal]:
        """Linear coefficients in :data:`USAGE_VECTOR` order, then the start price."""
        return (self.price_cpu_sec, self.price_duration_sec, self.price_start)

    def properties(self, *, node_id: str, name: str) -> Dict[str, Any]:
        """The offer's flat property set for the provider identity ``node_id``."""
        properties = {
            "golem.inf.mem.gib": self.mem_gib,
            "golem.inf.storage.gib": self.storage_gib,
            "golem.inf.cpu.threads": self.threads,
            "golem.inf.cpu.cores": self.cores,
            "golem.inf.cpu.architecture": "x86_64",
            "golem.runtime.name": self.runtime,
            "golem.runtime.version": "0.0.0-localnet",
            "golem.runtime.capabilities": ["start-entrypoint", *(CAPABILITIES if self.inet else ())],
            "golem.activity.caps.transfer.protocol": ["gftp", "http", "https"],
            "golem.srv.caps.multi-activity": True,
            "golem.node.id.name": name,
            "golem.node.debug.subnet": self.subnet,
            "golem.com.scheme": "payu",
            **self.terms(),
            "golem.com.pricing.model": "linear",
            "golem.com.pricing.model.linear.coeffs": [float(c) for c in self.coeffs],
            "golem.com.usage.vector": list(USAGE_VECTOR),
            f"golem.com.payment.platform.{self.platform}.address": node_id,
            "golem.com.payment.protocol.version": 3,
        }
        if self.gpu is not None:  # GPU offer hook (gpu13)
            properties["golem.runtime.capabilities"] = [*properties["golem.runtime.capabilities"],
                                                        _gpu.GPU_CAPABILITY]
            properties.update(_gpu.card_properties(self.gpu))
        return properties

    def terms(self) -> Dict[str, Any]:
        """The payment terms the offer proposes (mirrored only if the requestor agrees)."""
        terms: Dict[str, Any] = {
            "golem.com.scheme.payu.debit-note.interval-sec?": self.debit_note_interval,
            "golem.com.payment.debit-notes.accept-timeout?": self.accept_timeout,
        }
        if self.payment_timeout is not None:
            terms["golem.com.scheme.payu.payment-timeout-sec?"] = self.payment_timeout
        return terms

    def constraints(self) -> str:
        """What the offer asks of a demand (ya-provider asks for the subnet and an expiration)."""
        return f"(&(golem.node.debug.subnet={self.subnet})(golem.srv.comp.expiration>0))"

    def cost(self, cpu_sec: float, duration_sec: float) -> Decimal:
        """The amount due for the given usage, rounded like a GLM amount (18 decimals)."""
        total = (
            self.price_start
            + self.price_cpu_sec * _decimal(cpu_sec)
            + self.price_duration_sec * _decimal(duration_sec)
        )
        return total.quantize(Decimal("1e-18"))
