"""``/payment-api/v1``, requestor side: allocations, debit notes, invoices (protocol §5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import List, Optional, Sequence, Union

from ....errors import ApiError, ConfigurationError
from .._http.json import format_decimal, format_timestamp, parse_decimal
from .models import (
    Account,
    Allocation,
    DebitNote,
    DebitNoteEvent,
    Invoice,
    InvoiceEvent,
    MarketDecoration,
    split_payment_platform,
)
from .._http.retry import CallKind
from .._http.transport import Transport, check_max_events, check_timeout, list_of, path_id

PREFIX = "/payment-api/v1"
Amount = Union[Decimal, int, str]
When = Union[datetime, str, None]


def _timestamp(value: When) -> Optional[str]:
    return format_timestamp(value) if isinstance(value, datetime) else value


def _positive(amount: Amount, name: str) -> str:
    if isinstance(amount, float):
        # 0.1 as a float is 0.1000000000000000055...; the daemon compares amounts exactly.
        raise ConfigurationError(f"{name} must be a Decimal or a decimal string, not the float {amount!r}")
    try:
        value = parse_decimal(amount)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{name} must be a decimal amount such as Decimal('5'), got {amount!r}") from exc
    if value < 0 or (name == "total_amount" and value == 0):
        raise ConfigurationError(f"{name} must be positive, got {amount!r}")
    return format_decimal(value)


class PaymentApi:
    """One method per payment endpoint; reached as ``YagnaClient.payment``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create_allocation(self, *, total_amount: Amount, payment_platform: str, timeout: datetime,
                          address: Optional[str] = None, make_deposit: bool = False) -> Allocation:
        """Reserve ``total_amount`` on ``payment_platform`` until ``timeout`` (P1).

        The daemon releases the allocation at ``timeout``, so let it outlive the
        acceptance of the last invoice. ``address`` defaults to the node id.

        Raises:
            ApiError: 400 when funds are short or the platform is unknown.
        """
        split_payment_platform(payment_platform)
        body = {"paymentPlatform": payment_platform, "totalAmount": _positive(total_amount, "total_amount"),
                "timeout": format_timestamp(timeout), "makeDeposit": make_deposit}
        if address is not None:
            body["address"] = address
        try:
            return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/allocations", body=body,
                                parse=Allocation.from_json)
        except ApiError as exc:
            if exc.status == 400 and "fund" in exc.message.lower():
                network = split_payment_platform(payment_platform)[1]
                raise ApiError(f"{exc.message}; fund the account (on a testnet: `yagna payment fund "
                               f"--network {network}`), then check `yagna payment status --network "
                               f"{network}`", status=400) from exc
            raise

    def get_allocation(self, allocation_id: str) -> Allocation:
        """One allocation (P2). Raises Gone once it was released."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/allocations/{path_id(allocation_id)}",
                            parse=Allocation.from_json)

    def release_allocation(self, allocation_id: str) -> None:
        """Give the reserved funds back (P4), after every invoice was accepted."""
        self._t.call(CallKind.CLEANUP, "DELETE", f"{PREFIX}/allocations/{path_id(allocation_id)}")

    def get_demand_decorations(self, allocation_ids: Sequence[str]) -> MarketDecoration:
        """What a demand paid from these allocations must carry (P5)."""
        if isinstance(allocation_ids, str) or not allocation_ids:
            raise ConfigurationError("allocation_ids must be a non-empty list of ids")
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/demandDecorations",
                            params={"allocationIds": ",".join(allocation_ids)},
                            parse=MarketDecoration.from_json)

    def get_requestor_accounts(self) -> List[Account]:
        """This node's payment accounts (P6): which platforms it can pay on."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/requestorAccounts",
                            parse=list_of(Account.from_json))

    def collect_debit_note_events(self, *, after_timestamp: When = None, timeout: float = 5.0,
                                  max_events: Optional[int] = None,
                                  app_session_id: Optional[str] = None) -> List[DebitNoteEvent]:
        """Long-poll debit-note events (P7). They are persistent: pass the start time,
        then the last ``event_date``, as ``after_timestamp``, and dedupe by id."""
        return self._t.call(CallKind.POLL, "GET", f"{PREFIX}/debitNoteEvents",
                            params=_event_params(after_timestamp, timeout, max_events, app_session_id),
                            server_timeout=timeout, parse=list_of(DebitNoteEvent.from_json))

    def get_debit_note(self, debit_note_id: str) -> DebitNote:
        """One debit note (P8)."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/debitNotes/{path_id(debit_note_id)}",
                            parse=DebitNote.from_json)

    def accept_debit_note(self, debit_note_id: str, total_amount_accepted: Amount, allocation_id: str, *,
                          timeout: float = 15.0) -> None:
        """Accept a debit note (P9) with exactly its ``total_amount_due``.

        Raises:
            ApiError: 400 for a different amount or short funds.
            Gone: the allocation was released.
        """
        self._accept(f"{PREFIX}/debitNotes/{path_id(debit_note_id)}/accept", total_amount_accepted,
                     allocation_id, timeout)

    def collect_invoice_events(self, *, after_timestamp: When = None, timeout: float = 5.0,
                               max_events: Optional[int] = None,
                               app_session_id: Optional[str] = None) -> List[InvoiceEvent]:
        """Long-poll invoice events (P10); persistent like debit-note events."""
        return self._t.call(CallKind.POLL, "GET", f"{PREFIX}/invoiceEvents",
                            params=_event_params(after_timestamp, timeout, max_events, app_session_id),
                            server_timeout=timeout, parse=list_of(InvoiceEvent.from_json))

    def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice (P11)."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/invoices/{path_id(invoice_id)}",
                            parse=Invoice.from_json)

    def accept_invoice(self, invoice_id: str, amount: Amount, allocation_id: str, *,
                       timeout: float = 15.0) -> None:
        """Accept an invoice (P12) with exactly its ``amount``; the daemon then pays it.

        Raises:
            ApiError: 400 for a different amount, a cancelled invoice or short funds.
            Gone: the allocation was released.
        """
        self._accept(f"{PREFIX}/invoices/{path_id(invoice_id)}/accept", amount, allocation_id, timeout)

    def _accept(self, path: str, amount: Amount, allocation_id: str, timeout: float) -> None:
        body = {"totalAmountAccepted": _positive(amount, "amount"), "allocationId": allocation_id}
        self._t.call(CallKind.ACK, "POST", path, params={"timeout": check_timeout(timeout)}, body=body,
                     server_timeout=timeout)


def _event_params(after_timestamp: When, timeout: float, max_events: Optional[int],
                  app_session_id: Optional[str]) -> dict:
    return {"timeout": check_timeout(timeout), "afterTimestamp": _timestamp(after_timestamp),
            "maxEvents": None if max_events is None else check_max_events(max_events),
            "appSessionId": app_session_id}
