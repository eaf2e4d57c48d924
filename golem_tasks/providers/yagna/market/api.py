"""``/market-api/v1``, requestor side: demands, negotiation, agreements (protocol §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, List, Mapping, Optional, Union

from .demand import Demand
from .._http.json import format_timestamp
from .models import Agreement, AgreementEvent, MarketEvent, Offer, Proposal, parse_market_event
from .._http.retry import CallKind
from .._http.transport import Transport, check_max_events, check_timeout, json_string, list_of, path_id

PREFIX = "/market-api/v1"

#: The reason the SDKs send when they terminate an agreement after finishing.
SUCCESS_REASON: Mapping[str, Any] = {"message": "Successfully finished all work",
                                     "golem.requestor.code": "Success"}


def _timestamp(value: Union[datetime, str, None]) -> Optional[str]:
    return format_timestamp(value) if isinstance(value, datetime) else value


class MarketApi:
    """One method per market endpoint; reached as ``YagnaClient.market``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def subscribe_demand(self, demand: Demand) -> str:
        """Publish ``demand``; return its subscription id (M1). It lives 1 h."""
        return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/demands", body=demand.to_json(),
                            parse=json_string)

    def unsubscribe_demand(self, subscription_id: str) -> None:
        """Withdraw a demand (M7). Raises NotFound when it already lapsed: ignore that."""
        self._t.call(CallKind.CLEANUP, "DELETE", f"{PREFIX}/demands/{path_id(subscription_id)}")

    def collect_offers(self, subscription_id: str, *, timeout: float = 5.0,
                       max_events: int = 20) -> List[MarketEvent]:
        """Long-poll for proposal events (M3); ``[]`` when none came within ``timeout``.

        Events are consumed by reading them: use one reader per subscription.

        Raises:
            NotFound: the subscription lapsed (1 h) or was removed; subscribe again.
        """
        params = {"timeout": check_timeout(timeout), "maxEvents": check_max_events(max_events)}
        return self._t.call(CallKind.POLL, "GET", f"{PREFIX}/demands/{path_id(subscription_id)}/events",
                            params=params, server_timeout=timeout, parse=list_of(parse_market_event))

    def counter_proposal(self, subscription_id: str, proposal_id: str, demand: Demand) -> str:
        """Answer proposal ``proposal_id`` with ``demand`` (M4); return the counter's id.

        Raises:
            Gone: the proposal was already countered, or expired.
        """
        path = f"{PREFIX}/demands/{path_id(subscription_id)}/proposals/{path_id(proposal_id)}"
        return self._t.call(CallKind.CREATE, "POST", path, body=demand.to_json(), parse=json_string)

    def get_proposal(self, subscription_id: str, proposal_id: str) -> Proposal:
        """One proposal (M5)."""
        path = f"{PREFIX}/demands/{path_id(subscription_id)}/proposals/{path_id(proposal_id)}"
        return self._t.call(CallKind.READ, "GET", path, parse=Proposal.from_json)

    def reject_proposal(self, subscription_id: str, proposal_id: str, message: str) -> None:
        """Reject a proposal, ending that negotiation (M6)."""
        path = f"{PREFIX}/demands/{path_id(subscription_id)}/proposals/{path_id(proposal_id)}/reject"
        self._t.call(CallKind.CLEANUP, "POST", path, body={"message": message})

    def create_agreement(self, proposal_id: str, valid_to: datetime) -> str:
        """Make an agreement from a ``Draft`` proposal (M8); return its id.

        Raises:
            ApiError: 400 when the proposal was never countered (an ``Initial`` one).
        """
        body = {"proposalId": proposal_id, "validTo": format_timestamp(valid_to)}
        return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/agreements", body=body, parse=json_string)

    def confirm_agreement(self, agreement_id: str, *, app_session_id: Optional[str] = None) -> None:
        """Send the agreement to the provider (M9); then :meth:`wait_for_approval`."""
        self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/agreements/{path_id(agreement_id)}/confirm",
                     params={"appSessionId": app_session_id})

    def wait_for_approval(self, agreement_id: str, *, timeout: float = 15.0) -> bool:
        """Wait up to ``timeout`` s for the provider (M10): True once it approved, False
        when it has not decided yet (a 408; call again until ``valid_to``).

        Raises:
            Gone: rejected, cancelled, expired or terminated: final, try another offer.
        """
        return self._t.call(CallKind.POLL, "POST", f"{PREFIX}/agreements/{path_id(agreement_id)}/wait",
                            params={"timeout": check_timeout(timeout)}, server_timeout=timeout,
                            answers={204: True, 408: False})

    def get_agreement(self, agreement_id: str) -> Agreement:
        """One agreement (M11)."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/agreements/{path_id(agreement_id)}",
                            parse=Agreement.from_json)

    def terminate_agreement(self, agreement_id: str, reason: Optional[Mapping[str, Any]] = None) -> None:
        """End an approved agreement (M12); the provider then sends its invoice.

        ``reason`` defaults to :data:`SUCCESS_REASON`. Raises Gone when it was already
        terminated: ignore that during cleanup.
        """
        self._t.call(CallKind.CLEANUP, "POST", f"{PREFIX}/agreements/{path_id(agreement_id)}/terminate",
                     body=dict(reason or SUCCESS_REASON))

    def cancel_agreement(self, agreement_id: str, message: str) -> None:
        """Withdraw an agreement the provider has not approved yet (M13)."""
        self._t.call(CallKind.CLEANUP, "POST", f"{PREFIX}/agreements/{path_id(agreement_id)}/cancel",
                     body={"message": message})

    def collect_agreement_events(self, *, after_timestamp: Union[datetime, str, None] = None,
                                 timeout: float = 5.0, max_events: Optional[int] = None,
                                 app_session_id: Optional[str] = None) -> List[AgreementEvent]:
        """Long-poll agreement events (M14): approvals, rejections, terminations."""
        params = {"timeout": check_timeout(timeout), "afterTimestamp": _timestamp(after_timestamp),
                  "maxEvents": None if max_events is None else check_max_events(max_events),
                  "appSessionId": app_session_id}
        return self._t.call(CallKind.POLL, "GET", f"{PREFIX}/agreementEvents", params=params,
                            server_timeout=timeout, parse=list_of(AgreementEvent.from_json))

    # -- market scan: the offers the daemon knows, with no demand and no negotiation --
    def begin_scan(self, *, constraints: Optional[str] = None, lifetime: int = 30) -> str:
        """Start listing offers (``POST /scan``), optionally only those matching
        ``constraints``; the daemon forgets an unused scan after ``lifetime`` s."""
        body: dict = {"type": "offer", "timeout": int(lifetime)}
        if constraints is not None:
            body["constraints"] = constraints
        return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/scan", body=body, parse=json_string)

    def collect_scan(self, scan_id: str, *, timeout: float = 5.0, max_events: int = 100) -> List[Offer]:
        """The next offers of a scan; ``[]`` when no new one came within ``timeout``."""
        params = {"timeout": check_timeout(timeout), "maxEvents": check_max_events(max_events)}
        return self._t.call(CallKind.POLL, "GET", f"{PREFIX}/scan/{path_id(scan_id)}/events", params=params,
                            server_timeout=timeout, parse=list_of(Offer.from_json))

    def end_scan(self, scan_id: str) -> None:
        """End a scan (yagna 0.17.6 serves ``DELETE /scan/{id}``, not the spec's ``.../events``)."""
        self._t.call(CallKind.CLEANUP, "DELETE", f"{PREFIX}/scan/{path_id(scan_id)}")
