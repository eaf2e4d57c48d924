"""Turning a provider's draft into an approved agreement: create, confirm, wait
(yagna-protocol.md §2.5). Anything short of approval cancels the agreement, so the
provider's capacity is not held for nothing."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional

import attrs

from ...errors import ApiError, ProviderError
from ._market import Proposal
from ._market_api import MarketApi
from .errors import Gone

logger = logging.getLogger(__name__)

#: An agreement must be approved before this; after approval it no longer matters
#: (the daemon never moves an approved agreement to Expired).
AGREEMENT_VALIDITY = timedelta(hours=1)
#: Longest single wait for approval; the loop checks the abort event in between.
APPROVAL_SLICE = 10.0


@attrs.frozen
class Candidate:
    """A provider's draft answering our counter-proposal: ready for an agreement."""

    proposal: Proposal
    score: float
    subscription_id: str


class CandidateFailed(Exception):
    """This candidate did not become a working session; try the next one (internal).

    Attributes:
        agreement_id: the agreement made for it, if any.
    """

    def __init__(self, message: str, agreement_id: str = "") -> None:
        super().__init__(message)
        self.agreement_id = agreement_id


def agree(market: MarketApi, candidate: Candidate, *, approval: float, app_session_id: str,
          abort: Optional[threading.Event]) -> str:
    """Make, confirm and wait for an agreement on ``candidate``; return its id.

    Raises:
        CandidateFailed: not made, rejected, or not approved within ``approval`` s.
        ProviderError: ``abort`` was set (the agreement is cancelled).
    """
    valid_to = datetime.now(timezone.utc) + AGREEMENT_VALIDITY
    try:
        agreement_id = market.create_agreement(candidate.proposal.proposal_id, valid_to)
    except ApiError as exc:
        raise CandidateFailed(f"the agreement could not be made: {exc.message}") from exc
    try:
        market.confirm_agreement(agreement_id, app_session_id=app_session_id)
        _wait_for_approval(market, agreement_id, approval, abort)
    except BaseException as exc:
        _cancel(market, agreement_id)
        if isinstance(exc, ApiError):
            raise CandidateFailed(f"agreement {agreement_id} failed: {exc.message}", agreement_id) from exc
        if isinstance(exc, CandidateFailed):
            exc.agreement_id = agreement_id
        raise
    return agreement_id


def _wait_for_approval(market: MarketApi, agreement_id: str, approval: float,
                       abort: Optional[threading.Event]) -> None:
    deadline = time.monotonic() + approval
    while True:
        if abort is not None and abort.is_set():
            raise ProviderError("engaging a Golem provider was aborted")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CandidateFailed(f"agreement {agreement_id} was not approved within {approval:g} s")
        try:
            # False is the daemon's 408: not decided yet, ask again.
            if market.wait_for_approval(agreement_id, timeout=round(min(remaining, APPROVAL_SLICE), 3)):
                return
        except Gone as exc:
            raise CandidateFailed(f"the provider did not approve agreement {agreement_id}: "
                                  f"{exc.message}") from exc


def _cancel(market: MarketApi, agreement_id: str) -> None:
    try:
        market.cancel_agreement(agreement_id, "Work cancelled")
    except ApiError as exc:  # rejected or expired already: nothing to undo
        logger.debug("cancelling agreement %s: %s", agreement_id, exc)
