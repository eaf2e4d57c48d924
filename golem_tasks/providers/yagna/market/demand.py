"""The demand a requestor publishes: what it wants to run, where, and until when.

A demand is flat properties plus an LDAP-like constraint filter (yagna-protocol.md
§2.2-2.3). :func:`build_demand` writes one for a VM image and checks the rules real
providers apply, so a demand that no provider would answer fails here, at once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Tuple, Union

import attrs

from ....errors import ConfigurationError
from .._http.json import epoch_millis, frozen_mapping, string_tuple

if TYPE_CHECKING:  # pragma: no cover
    from ..payment.models import MarketDecoration

#: Providers reject a demand whose expiration is less than 5 min or more than 30 min
#: ahead (ya-provider's builtin expiration negotiator), see yagna-provider-side.md.
MIN_EXPIRATION = timedelta(minutes=5)
MAX_EXPIRATION = timedelta(minutes=30)
#: With an agreed debit-note accept timeout the window opens up; beyond 10 h providers
#: also want mid-agreement payment terms, which this library does not negotiate.
MAX_EXPIRATION_WITH_ACCEPT_TIMEOUT = timedelta(hours=10)
DEFAULT_EXPIRATION = timedelta(minutes=25)

PACKAGE_FORMAT = "gvmkit-squash"
EXPIRATION = "golem.srv.comp.expiration"
SUBNET = "golem.node.debug.subnet"
TASK_PACKAGE = "golem.srv.comp.task_package"
ACCEPT_TIMEOUT = "golem.com.payment.debit-notes.accept-timeout?"
CHOSEN_PLATFORM = "golem.com.payment.chosen-platform"
#: Mid-agreement payments: debit notes every ``interval`` s, each payable within
#: ``payment-timeout`` s of being issued (yagna-protocol.md §2.2).
DEBIT_NOTE_INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
PAYMENT_TIMEOUT = "golem.com.scheme.payu.payment-timeout-sec?"

_SHA3_224 = re.compile(r"[0-9a-f]{56}")


def _image_hash(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not _SHA3_224.fullmatch(value):
        raise ConfigurationError(
            f"image_hash must be the 56 hex digits of the image's sha3-224, got {value!r} "
            "(gvmkit-build prints it; the registry answers it as 'sha3')"
        )


def _http_url(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"image_url must be an http(s) URL of the .gvmi file, got {value!r}")


@attrs.frozen(kw_only=True)
class VmPayload:
    """A VM image and the least hardware it needs.

    Attributes:
        image_hash: sha3-224 of the ``.gvmi`` file, as hex.
        image_url: where providers download it from (http or https).
        min_mem_gib, min_storage_gib, min_threads, min_cores: lower bounds on the offer.
        capabilities: runtime capabilities the offer must list (``vpn``, ``inet``, ...).
        runtime: the offer's ``golem.runtime.name``.
    """

    image_hash: str = attrs.field(validator=_image_hash)
    image_url: str = attrs.field(validator=_http_url)
    min_mem_gib: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
    min_storage_gib: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    min_threads: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    min_cores: Optional[int] = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    capabilities: Tuple[str, ...] = attrs.field(default=(), converter=string_tuple)
    runtime: str = "vm"

    @property
    def task_package(self) -> str:
        """``hash:sha3:<hash>:<url>``, the form providers download and check."""
        return f"hash:sha3:{self.image_hash}:{self.image_url}"

    def properties(self) -> dict:
        return {TASK_PACKAGE: self.task_package, "golem.srv.comp.vm.package_format": PACKAGE_FORMAT}

    def constraints(self) -> Tuple[str, ...]:
        parts = [
            f"(golem.runtime.name={self.runtime})",
            f"(golem.inf.mem.gib>={float(self.min_mem_gib)})",
            f"(golem.inf.storage.gib>={float(self.min_storage_gib)})",
            f"(golem.inf.cpu.threads>={self.min_threads})",
        ]
        if self.min_cores is not None:
            parts.append(f"(golem.inf.cpu.cores>={self.min_cores})")
        parts.extend(f"(golem.runtime.capabilities={name})" for name in self.capabilities)
        return tuple(parts)


def and_constraints(parts: Iterable[str]) -> str:
    """``(&(a)(b)...)`` of the non-empty parts; one part stays as it is."""
    kept = [part.strip() for part in parts if part and part.strip() not in ("", "()")]
    for part in kept:
        if not (part.startswith("(") and part.endswith(")")):
            raise ConfigurationError(
                f"a constraint must be parenthesised, like (golem.inf.mem.gib>=1): {part!r}")
    if not kept:
        return "()"
    return kept[0] if len(kept) == 1 else "(&" + "".join(kept) + ")"


@attrs.frozen
class Demand:
    """Properties and constraints, as sent to ``POST /demands`` and as counter-proposals.

    Build one with :func:`build_demand`; derive others with :meth:`with_properties`
    and :meth:`decorate`, which return new demands.
    """

    properties: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)
    constraints: str = "()"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Demand":
        properties = data["properties"]
        if not isinstance(properties, Mapping) or not isinstance(data["constraints"], str):
            raise TypeError(f"not a demand: {data!r}")
        return cls(properties, data["constraints"])

    def to_json(self) -> dict:
        return {"properties": dict(self.properties), "constraints": self.constraints}

    def with_properties(self, extra: Mapping[str, Any]) -> "Demand":
        """A copy with ``extra`` properties set (e.g. the chosen payment platform)."""
        return attrs.evolve(self, properties={**self.properties, **extra})

    def decorate(self, decoration: "MarketDecoration") -> "Demand":
        """A copy with the payment decoration of an allocation merged in: its properties
        set, its constraints ANDed (yagna-protocol.md §5.2)."""
        return Demand({**self.properties, **dict(decoration.properties)},
                      and_constraints((self.constraints, *decoration.constraints)))

    @property
    def expiration(self) -> Optional[datetime]:
        value = self.properties.get(EXPIRATION)
        return None if value is None else datetime.fromtimestamp(value / 1000, timezone.utc)


def build_demand(payload: VmPayload, *,
                 expiration: Union[datetime, timedelta] = DEFAULT_EXPIRATION,
                 subnet: str = "public",
                 decoration: Optional["MarketDecoration"] = None,
                 debit_note_accept_timeout: Optional[int] = None,
                 properties: Optional[Mapping[str, Any]] = None,
                 constraints: Iterable[str] = (),
                 now: Optional[datetime] = None) -> Demand:
    """A demand for ``payload`` on ``subnet``.

    Args:
        payload: the image and hardware bounds.
        expiration: when the demanded activity expires, absolute or from ``now``;
            5-30 min ahead (up to 10 h with ``debit_note_accept_timeout``).
        subnet: ``golem.node.debug.subnet``, set and constrained (``public`` on mainnet
            and the public testnets).
        decoration: the payment decoration of the allocation(s) that will pay
            (``PaymentApi.get_demand_decorations``).
        debit_note_accept_timeout: seconds within which the requestor promises to accept
            each debit note (5-240, the provider's limit); omitted when None.
        properties, constraints: anything else to set or AND in.
        now: the current time (tests pass a fixed one).

    Raises:
        ConfigurationError: the expiration or the accept timeout is outside what
            providers accept, or a constraint is not parenthesised.
    """
    now = now or datetime.now(timezone.utc)
    expires = now + expiration if isinstance(expiration, timedelta) else expiration
    _check_expiration(expires, now, debit_note_accept_timeout)
    props: dict = {EXPIRATION: epoch_millis(expires), SUBNET: subnet, **payload.properties()}
    if debit_note_accept_timeout is not None:
        if not 5 <= debit_note_accept_timeout <= 240:
            raise ConfigurationError(f"debit_note_accept_timeout must be 5-240 s (providers reject "
                                     f"more), got {debit_note_accept_timeout}")
        props[ACCEPT_TIMEOUT] = int(debit_note_accept_timeout)
    props.update(properties or {})
    demand = Demand(props, and_constraints((*payload.constraints(), f"({SUBNET}={subnet})", *constraints)))
    return demand.decorate(decoration) if decoration is not None else demand


def _check_expiration(expires: datetime, now: datetime, accept_timeout: Optional[int]) -> None:
    if expires.tzinfo is None or now.tzinfo is None:
        raise ConfigurationError("expiration and now must be aware datetimes (datetime.now(timezone.utc))")
    ahead = expires - now
    longest = MAX_EXPIRATION if accept_timeout is None else MAX_EXPIRATION_WITH_ACCEPT_TIMEOUT
    if not MIN_EXPIRATION <= ahead <= longest:
        hint = "" if accept_timeout is not None else (
            " (more needs debit_note_accept_timeout, then up to 10 h)")
        raise ConfigurationError(
            f"the demand must expire {_minutes(MIN_EXPIRATION)}-{_minutes(longest)} min from now, "
            f"not {ahead.total_seconds() / 60:.1f} min: providers reject other demands and "
            f"never answer{hint}"
        )


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"
