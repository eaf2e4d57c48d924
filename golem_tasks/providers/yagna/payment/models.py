"""Payment values: platforms, allocations, demand decorations, debit notes, invoices.

Amounts are :class:`~decimal.Decimal` everywhere (the daemon sends decimal strings and
compares accepted amounts exactly), never float (yagna-protocol.md §1.2, §5).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import attrs

from ....errors import ConfigurationError
from .._http.json import (
    format_decimal,
    format_timestamp,
    frozen_mapping,
    optional_str,
    optional_timestamp,
    parse_decimal,
    parse_timestamp,
    required_str,
    string_tuple,
)

#: The payment networks golem_tasks pays on, and their token: real GLM on the mainnets,
#: test GLM (tGLM) on the testnets. yagna 0.17.6 knows a few more (goerli, mumbai,
#: rinkeby), whose chains are retired; they are refused like any unknown name.
NETWORK_TOKENS = {"hoodi": "tglm", "holesky": "tglm", "sepolia": "tglm", "amoy": "tglm",
                  "polygon": "glm", "mainnet": "glm"}
MAINNETS = frozenset(n for n, token in NETWORK_TOKENS.items() if token == "glm")
TESTNETS = frozenset(n for n, token in NETWORK_TOKENS.items() if token == "tglm")
#: The default test network: Ethereum's Holesky is shut down, and golem-js (since 3.9)
#: and the yagna 0.17.6 CLI default to hoodi (issue 9 item 7).
DEFAULT_TESTNET = "hoodi"
#: Golem's mainnet is polygon.
DEFAULT_MAINNET = "polygon"


def check_network(network: str) -> str:
    """``network`` if it is one golem_tasks pays on.

    Raises:
        ConfigurationError: an unknown name, with the list of known ones.
    """
    if network not in NETWORK_TOKENS:
        known = ", ".join(f"{n} ({'GLM' if t == 'glm' else 'tGLM'})" for n, t in NETWORK_TOKENS.items())
        raise ConfigurationError(f"unknown payment network {network!r}: use one of {known}")
    return network


def payment_platform(network: Optional[str] = None, *, driver: str = "erc20",
                     token: Optional[str] = None, mainnet: bool = False) -> str:
    """The platform name ``<driver>-<network>-<token>``, e.g. ``erc20-hoodi-tglm``.

    Args:
        network: the chain: ``hoodi`` (the default), ``holesky``, ``sepolia``, ``amoy``
            (test GLM), or ``polygon`` (the default with ``mainnet=True``), ``mainnet``.
        driver: the payment driver (``erc20``).
        token: ``glm`` on mainnets and ``tglm`` on testnets unless given.
        mainnet: pay with real GLM: ``payment_platform(mainnet=True)`` is ``erc20-polygon-glm``.

    Raises:
        ConfigurationError: an unknown network (the message lists the known ones),
            uppercase names (the daemon rejects them), or ``mainnet=True`` with a testnet.
    """
    network = network if network is not None else (DEFAULT_MAINNET if mainnet else DEFAULT_TESTNET)
    for name, value in (("network", network), ("driver", driver), ("token", token)):
        if value is not None and (not value or value != value.lower() or "-" in value):
            raise ConfigurationError(f"payment {name} must be lowercase without '-', got {value!r}")
    check_network(network)
    if mainnet and network not in MAINNETS:
        raise ConfigurationError(f"mainnet=True pays real GLM, but {network!r} is a test network")
    return f"{driver}-{network}-{token or NETWORK_TOKENS[network]}"


def split_payment_platform(name: str) -> Tuple[str, str, str]:
    """``erc20-hoodi-tglm`` -> ``("erc20", "hoodi", "tglm")``."""
    parts = name.split("-")
    if len(parts) != 3 or not all(parts):
        raise ConfigurationError(f"not a payment platform name (<driver>-<network>-<token>): {name!r}")
    return parts[0], parts[1], parts[2]


@attrs.frozen(kw_only=True)
class Allocation:
    """Funds reserved to pay providers; released automatically at ``timeout``."""

    allocation_id: str
    address: str
    payment_platform: str
    total_amount: Decimal = attrs.field(converter=parse_decimal)
    spent_amount: Decimal = attrs.field(converter=parse_decimal)
    remaining_amount: Decimal = attrs.field(converter=parse_decimal)
    timestamp: datetime
    timeout: Optional[datetime] = None
    make_deposit: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Allocation":
        return cls(
            allocation_id=required_str(data, "allocationId"), address=required_str(data, "address"),
            payment_platform=required_str(data, "paymentPlatform"),
            total_amount=data["totalAmount"], spent_amount=data["spentAmount"],
            remaining_amount=data["remainingAmount"], timestamp=parse_timestamp(data["timestamp"]),
            timeout=optional_timestamp(data.get("timeout")),
            make_deposit=bool(data.get("makeDeposit", False)),
        )

    def to_json(self) -> dict:
        data = {"allocationId": self.allocation_id, "address": self.address,
                "paymentPlatform": self.payment_platform, "totalAmount": format_decimal(self.total_amount),
                "spentAmount": format_decimal(self.spent_amount),
                "remainingAmount": format_decimal(self.remaining_amount),
                "timestamp": format_timestamp(self.timestamp), "makeDeposit": self.make_deposit}
        if self.timeout is not None:
            data["timeout"] = format_timestamp(self.timeout)
        return data


def _pairs(values: Iterable[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    return tuple((key, value) for key, value in values)


@attrs.frozen
class MarketDecoration:
    """What an allocation adds to a demand: payer address properties and constraints."""

    properties: Tuple[Tuple[str, str], ...] = attrs.field(converter=_pairs)
    constraints: Tuple[str, ...] = attrs.field(converter=string_tuple)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MarketDecoration":
        properties = tuple((required_str(item, "key"), required_str(item, "value"))
                           for item in data["properties"])
        constraints = tuple(data["constraints"])
        if not all(isinstance(item, str) for item in constraints):
            raise TypeError(f"decoration constraints must be strings: {constraints!r}")
        return cls(properties, constraints)

    def to_json(self) -> dict:
        return {"properties": [{"key": key, "value": value} for key, value in self.properties],
                "constraints": list(self.constraints)}


@attrs.frozen(kw_only=True)
class Account:
    """A payment account of this node (``GET /requestorAccounts``)."""

    platform: str
    address: str
    driver: str
    network: str
    token: str
    send: bool
    receive: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Account":
        names = ("platform", "address", "driver", "network", "token")
        return cls(**{key: required_str(data, key) for key in names},
                   send=bool(data["send"]), receive=bool(data["receive"]))


@attrs.frozen(kw_only=True)
class DebitNote:
    """A provider's running bill for one activity; ``total_amount_due`` is cumulative.

    Accept it with exactly ``total_amount_due``. It is payable when ``payment_due_date``
    is set.
    """

    debit_note_id: str
    issuer_id: str
    recipient_id: str
    payee_addr: str
    payer_addr: str
    payment_platform: str
    timestamp: datetime
    agreement_id: str
    activity_id: str
    total_amount_due: Decimal = attrs.field(converter=parse_decimal)
    status: str
    previous_debit_note_id: Optional[str] = None
    payment_due_date: Optional[datetime] = None
    usage_counter_vector: Any = attrs.field(default=None, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DebitNote":
        return cls(
            **_document_fields(data), debit_note_id=required_str(data, "debitNoteId"),
            activity_id=required_str(data, "activityId"), total_amount_due=data["totalAmountDue"],
            previous_debit_note_id=optional_str(data.get("previousDebitNoteId")),
            payment_due_date=optional_timestamp(data.get("paymentDueDate")),
            usage_counter_vector=data.get("usageCounterVector"),
        )

    def to_json(self) -> dict:
        data = {**_document_json(self), "debitNoteId": self.debit_note_id, "activityId": self.activity_id,
                "totalAmountDue": format_decimal(self.total_amount_due)}
        if self.previous_debit_note_id is not None:
            data["previousDebitNoteId"] = self.previous_debit_note_id
        if self.payment_due_date is not None:
            data["paymentDueDate"] = format_timestamp(self.payment_due_date)
        if self.usage_counter_vector is not None:
            data["usageCounterVector"] = self.usage_counter_vector
        return data


@attrs.frozen(kw_only=True)
class Invoice:
    """A provider's final bill for one agreement, issued after it is terminated.

    Accept it with exactly ``amount``, from an allocation on ``payment_platform`` whose
    address is ``payer_addr``.
    """

    invoice_id: str
    issuer_id: str
    recipient_id: str
    payee_addr: str
    payer_addr: str
    payment_platform: str
    timestamp: datetime
    agreement_id: str
    activity_ids: Tuple[str, ...] = attrs.field(converter=string_tuple)
    amount: Decimal = attrs.field(converter=parse_decimal)
    payment_due_date: datetime
    status: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Invoice":
        return cls(
            **_document_fields(data), invoice_id=required_str(data, "invoiceId"),
            activity_ids=data.get("activityIds") or (), amount=data["amount"],
            payment_due_date=parse_timestamp(data["paymentDueDate"]),
        )

    def to_json(self) -> dict:
        return {**_document_json(self), "invoiceId": self.invoice_id,
                "activityIds": list(self.activity_ids), "amount": format_decimal(self.amount),
                "paymentDueDate": format_timestamp(self.payment_due_date)}


_DOCUMENT_KEYS = (("issuer_id", "issuerId"), ("recipient_id", "recipientId"), ("payee_addr", "payeeAddr"),
                  ("payer_addr", "payerAddr"), ("payment_platform", "paymentPlatform"),
                  ("agreement_id", "agreementId"), ("status", "status"))


def _document_fields(data: Mapping[str, Any]) -> Dict[str, Any]:
    fields: Dict[str, Any] = {name: required_str(data, key) for name, key in _DOCUMENT_KEYS}
    fields["timestamp"] = parse_timestamp(data["timestamp"])
    return fields


def _document_json(document: Any) -> dict:
    data = {key: getattr(document, name) for name, key in _DOCUMENT_KEYS}
    data["timestamp"] = format_timestamp(document.timestamp)
    return data


@attrs.frozen(kw_only=True)
class DebitNoteEvent:
    """One item of ``GET /debitNoteEvents`` (``DebitNoteReceivedEvent``, ...).

    ``details`` holds the ``rejection`` or the payment-status ``property`` when present.
    """

    event_type: str
    event_date: datetime
    debit_note_id: str
    details: Optional[Mapping[str, Any]] = attrs.field(default=None, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DebitNoteEvent":
        return cls(event_type=required_str(data, "eventType"),
                   event_date=parse_timestamp(data["eventDate"]),
                   debit_note_id=required_str(data, "debitNoteId"), details=_event_details(data))

    def to_json(self) -> dict:
        return {"eventType": self.event_type, "eventDate": format_timestamp(self.event_date),
                "debitNoteId": self.debit_note_id, **dict(self.details or {})}


@attrs.frozen(kw_only=True)
class InvoiceEvent:
    """One item of ``GET /invoiceEvents`` (``InvoiceReceivedEvent``, ...)."""

    event_type: str
    event_date: datetime
    invoice_id: str
    details: Optional[Mapping[str, Any]] = attrs.field(default=None, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "InvoiceEvent":
        return cls(event_type=required_str(data, "eventType"),
                   event_date=parse_timestamp(data["eventDate"]),
                   invoice_id=required_str(data, "invoiceId"), details=_event_details(data))

    def to_json(self) -> dict:
        return {"eventType": self.event_type, "eventDate": format_timestamp(self.event_date),
                "invoiceId": self.invoice_id, **dict(self.details or {})}


def _event_details(data: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    details = {key: data[key] for key in ("rejection", "property") if key in data}
    return frozen_mapping(details) if details else None
