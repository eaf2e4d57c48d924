"""Turning a provider's draft into an approved agreement: create, confirm, wait
(yagna-protocol.md §2.5). Anything short of approval cancels the agreement, so the
provider's capacity is not held for nothing.

The scheduler's ``abort`` event calls an engagement off when the work no longer needs
it: nothing is created or confirmed once it is set, an agreement still waiting for
approval is cancelled, and one approved anyway is terminated at once (the caller makes
no activity for it)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

import attrs

from ....errors import ApiError, EngagementCancelled
from .models import Proposal
from .api import MarketApi
from ..errors import Gone

logger = logging.getLogger(__name__)

#: An agreement must be approved before this; after approval it no longer matters
#: (the daemon never moves an approved agreement to Expired).
AGREEMENT_VALIDITY = timedelta(hours=1)
#: Longest single wait for approval; the loop checks the abort event in between.
APPROVAL_SLICE = 10.0
#: The same while an ``abort`` event may call the engagement off: the daemon's wait
#: cannot be woken by it, so a cancelled engagement returns within this.
ABORTABLE_SLICE = 0.5
#: Agreement events are looked up from a little before the agreement was made: the
#: daemon's clock and ours are the same machine's, but timestamps are rounded.
EVENT_SLACK = timedelta(seconds=5)


@attrs.frozen
class Candidate:
    """A provider's draft answering our counter-proposal: ready for an agreement."""

    proposal: Proposal
    score: float
    subscription_id: str
    #: The offer the draft answers: its payment terms (the debit-note interval) hold
    #: even when the draft drops them, and the spend guard needs them.
    offer: Optional[Proposal] = None

    @property
    def terms(self) -> Dict[str, Any]:
        """The offer's properties updated with the draft's: what the provider bills by."""
        return {**(dict(self.offer.properties) if self.offer is not None else {}), **self.proposal.properties}


class CandidateFailed(Exception):
    """This candidate did not become a working session; try the next one (internal).

    Attributes:
        agreement_id: the agreement made for it, if any.
        rejected: the provider rejected the agreement.
    """

    def __init__(self, message: str, agreement_id: str = "", *, rejected: bool = False) -> None:
        super().__init__(message)
        self.agreement_id = agreement_id
        self.rejected = rejected


def agree(market: MarketApi, candidate: Candidate, *, approval: float, app_session_id: str,
          abort: Optional[threading.Event]) -> str:
    """Make, confirm and wait for an agreement on ``candidate``; return its id.

    Raises:
        CandidateFailed: not made, rejected, or not approved within ``approval`` s.
        EngagementCancelled: ``abort`` was set before approval (the agreement is
            cancelled). An agreement approved anyway is returned: the caller checks
            ``abort`` again and ends it.
    """
    check_abort(abort)
    made = datetime.now(timezone.utc)
    valid_to = made + AGREEMENT_VALIDITY
    try:
        agreement_id = market.create_agreement(candidate.proposal.proposal_id, valid_to)
    except ApiError as exc:
        raise CandidateFailed(f"the agreement could not be made: {exc.message}") from exc
    confirmed = False
    try:
        check_abort(abort)  # never confirm what is no longer wanted
        market.confirm_agreement(agreement_id, app_session_id=app_session_id)
        confirmed = True
        _wait_for_approval(market, agreement_id, approval, abort)
    except Exception as exc:
        if confirmed and isinstance(exc, Gone):  # rejected (or expired): final, nothing to cancel
            # The 410 says only "Rejected"; the provider's reason travels in its event.
            reason = _rejection_reason(market, agreement_id, made, app_session_id) or exc.message
            raise CandidateFailed(f"the provider did not approve agreement {agreement_id}: {reason}",
                                  agreement_id, rejected=True) from exc
        if confirmed and not _cancel(market, agreement_id):
            # Approved in the meantime (cancel is refused then): it is an agreement now,
            # which the caller pays for and ends if the work no longer needs it.
            return agreement_id
        if not confirmed:
            _cancel(market, agreement_id)
        if isinstance(exc, ApiError):
            raise CandidateFailed(f"agreement {agreement_id} failed: {exc.message}", agreement_id) from exc
        if isinstance(exc, CandidateFailed):
            exc.agreement_id = agreement_id
        raise
    except BaseException:
        _cancel(market, agreement_id)
        raise
    return agreement_id


#: The message of :class:`EngagementCancelled`.
CANCELLED_TEXT = "engaging a Golem provider was called off: the work no longer needs it"


def check_abort(abort: Optional[threading.Event]) -> None:
    """Raise :class:`EngagementCancelled` once ``abort`` is set."""
    if abort is not None and abort.is_set():
        raise EngagementCancelled(CANCELLED_TEXT)


def _wait_for_approval(market: MarketApi, agreement_id: str, approval: float,
                       abort: Optional[threading.Event]) -> None:
    deadline = time.monotonic() + approval
    slice_ = APPROVAL_SLICE if abort is None else ABORTABLE_SLICE
    while True:
        check_abort(abort)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CandidateFailed(f"agreement {agreement_id} was not approved within {approval:g} s")
        # False is the daemon's 408: not decided yet, ask again.
        if market.wait_for_approval(agreement_id, timeout=round(min(remaining, slice_), 3)):
            return


def _rejection_reason(market: MarketApi, agreement_id: str, since: datetime,
                      app_session_id: str) -> Optional[str]:
    """The provider's message from its ``AgreementRejectedEvent``, if it can be read."""
    try:
        events = market.collect_agreement_events(after_timestamp=since - EVENT_SLACK, timeout=0,
                                                 max_events=100, app_session_id=app_session_id)
    except ApiError as exc:
        logger.debug("reading why agreement %s was rejected: %s", agreement_id, exc)
        return None
    for event in events:
        if event.agreement_id == agreement_id and event.event_type == "AgreementRejectedEvent":
            message = (event.reason or {}).get("message")
            return str(message) if message else None
    return None


def _cancel(market: MarketApi, agreement_id: str) -> bool:
    """Cancel an agreement not approved yet; False if it was approved meanwhile."""
    try:
        market.cancel_agreement(agreement_id, "Work cancelled")
    except ApiError as exc:  # rejected or expired already: nothing to undo
        logger.debug("cancelling agreement %s: %s", agreement_id, exc)
        return not _approved(market, agreement_id)
    return True


def _approved(market: MarketApi, agreement_id: str) -> bool:
    try:
        return market.get_agreement(agreement_id).state == "Approved"
    except ApiError as exc:
        logger.debug("reading agreement %s: %s", agreement_id, exc)
        return False

