"""One engaged Golem provider: an approved agreement with a deployed, started activity.

A session runs one batch at a time (the exe-unit refuses a second one as "Busy").
Its work can be stopped in three ways, and afterwards the activity is destroyed
because the provider's VM state can no longer be trusted:

* a batch runs past its timeout: ``BatchTimeoutError``;
* :meth:`GolemSession.cancel` from another thread: ``BatchCancelled``; the activity is
  destroyed from a helper thread, so a long poll in flight ends at once;
* the provider goes away: ``ProviderLost``.

Then :attr:`GolemSession.usable` is False and the next ``execute`` raises
``ProviderLost``, so the scheduler releases the session and engages another provider.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import List, Optional, Sequence

from ...commands import Command, CommandResult
from ..._format import provider_label
from ...errors import ApiError, BatchCancelled, BatchTimeoutError, ProviderError, ProviderLost
from ..base import ProviderInfo, Session
from .activity.polling import BatchDeadline, BatchStopped, Results, collect, send_batch
from ._connect import Connection, cancellable, gsb_errors_not_retried
from ._events import AgreementTerminated
from ._rentals import SessionServices
from .activity.live import LiveOutput
from .market.api import SUCCESS_REASON
from ._http.retry import CallKind
from .activity.plan import Script, plan
from .errors import Gone, NotFound

logger = logging.getLogger(__name__)

#: The reason sent when an agreement ends before its work did (yapapi's convention).
CANCELLED_REASON = {"message": "Work cancelled", "golem.requestor.code": "Cancelled"}


class GolemSession(Session):
    """An agreement and its activity on one provider, made by ``GolemProvider.engage``.

    Attributes:
        info: the provider (``properties`` holds the offer, plus ``agreement_id`` and
            ``activity_id``).
        agreement_id, activity_id: the yagna ids.
    """

    def __init__(self, services: SessionServices, connection: Connection, info: ProviderInfo,
                 agreement_id: str, activity_id: str) -> None:
        self.info = info
        self.agreement_id = agreement_id
        self.activity_id = activity_id
        self._services = services
        self._cancelled = threading.Event()
        # Batch polls check the activity state on a GSB error instead of retrying it (activity.polling).
        self._gsb_retry = connection.policies[CallKind.POLL]
        policies = gsb_errors_not_retried(cancellable(connection.policies, self._cancelled.is_set))
        # Retries sleep on the cancel event: a cancel ends their backoff at once.
        self._client = connection.client(policies=policies, sleep=self._sleep)
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._spoiled: Optional[str] = None
        self._destroyed = False
        self._released = False
        self._stopper: Optional[threading.Thread] = None

    def __repr__(self) -> str:
        return f"<GolemSession {self.info.name} ({self.info.id}) activity={self.activity_id}>"

    @property
    def label(self) -> str:
        """The provider as messages name it: ``provider-1 (0xcc5f…3a1b)``."""
        return provider_label(self.info.name, self.info.id)

    def _sleep(self, seconds: float) -> None:
        self._cancelled.wait(seconds)

    @property
    def usable(self) -> bool:
        """False once the session's work was stopped; it must then be released."""
        return self._spoiled is None and not self._released

    # ------------------------------------------------------------------ batch
    def execute(self, commands: Sequence[Command], *, timeout: Optional[float] = None) -> List[CommandResult]:
        if not commands:
            return []
        if not self._running.acquire(blocking=False):
            raise RuntimeError(f"{self!r} runs one batch at a time")
        try:
            self._check_usable()
            deadline = None if timeout is None else time.monotonic() + timeout
            services = self._services
            # (plan's default wait for a download's data, not the short results poll)
            script = plan(commands, storage=services.storage, inline_limit=services.inline_limit)
            try:
                return self._run(script, deadline, timeout)
            finally:
                script.close()
        finally:
            self._running.release()

    def _check_usable(self) -> None:
        if self._released:
            raise RuntimeError(f"{self!r} was used after release()")
        if self._cancelled.is_set():
            raise BatchCancelled("the session was cancelled", provider=self.info.id)
        if self._spoiled is not None:
            raise ProviderLost(f"provider {self.label} cannot take more work: {self._spoiled}",
                               provider=self.info.id)

    def _run(self, script: Script, deadline: Optional[float], timeout: Optional[float]) -> List[CommandResult]:
        api, provider, name, who = self._client.activity, self.info.id, self.info.name, self.label
        exe = script.exe_commands
        try:
            batch_id = send_batch(api, self.activity_id, exe, provider, name)
        except ProviderLost as exc:
            self._spoil(exc.message)
            raise
        # (a refused batch ran nothing: the session stays usable)
        # Subscribed right after exec: the daemon does not replay what came before.
        live = LiveOutput.watch(api, self.activity_id, batch_id, script.steps, provider=provider)
        raw: Results = {}
        try:
            raw = collect(api, self.activity_id, batch_id, len(exe), deadline=deadline,
                          poll=self._services.timeouts.poll, stop=self._cancelled, provider=provider, name=name,
                          gsb_retry=self._gsb_retry)
        except BatchDeadline as exc:
            self._spoil("a batch ran past its timeout and was stopped")
            raise BatchTimeoutError(
                f"batch timed out after {timeout:g} s with {len(exc.results)} of {len(exe)} commands done; "
                f"its work on provider {who} was stopped", provider=provider) from None
        except BatchStopped:
            raise BatchCancelled(f"batch cancelled on provider {who}", provider=provider) from None
        except ProviderLost as exc:
            self._spoil(exc.message)
            raise
        except ProviderError as exc:
            if not self._cancelled.is_set():
                self._spoil(exc.message)  # the batch may still run there: never reuse the VM
                raise
            raise BatchCancelled(f"batch cancelled on provider {who}", provider=provider) from exc
        finally:
            if live is not None:  # before the results go back: no callback runs after the batch
                live.finish(raw if not self._cancelled.is_set() else {})
        # Stopping the activity may end the poll in flight with an "Error" result (the
        # real daemon answers "Runtime error: batch cancelled"): that is not the command's fault.
        if self._cancelled.is_set():
            raise BatchCancelled(f"batch cancelled on provider {who}", provider=provider)
        if self._spoiled is not None:
            raise ProviderLost(f"provider {who} cannot take more work: {self._spoiled}", provider=provider)
        return script.results(raw, provider, name)

    # ---------------------------------------------------------------- stopping
    def cancel(self) -> None:
        with self._lock:
            if self._cancelled.is_set() or self._released:
                return
            self._cancelled.set()
            self._spoiled = self._spoiled or "its batch was cancelled"
            busy = self._running.locked()
            if busy:
                # Destroying the activity ends the poll in flight at once; do it off the
                # caller's thread, which is cancelling other sessions too.
                self._stopper = threading.Thread(target=self._destroy, name="golem_tasks-stop", daemon=True)
                self._stopper.start()

    def stop_work(self, reason: str) -> None:
        """Stop whatever runs and refuse further work (e.g. the budget is spent)."""
        self._spoil(reason)

    def _spoil(self, reason: str) -> None:
        with self._lock:
            if self._spoiled is None:
                self._spoiled = reason
        self._destroy()

    def _destroy(self) -> None:
        with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
        try:
            self._services.client.activity.destroy_activity(self.activity_id,
                                                            timeout=self._services.timeouts.destroy)
        except (NotFound, Gone):
            pass
        except ApiError as exc:  # the provider may be gone; terminating the agreement still follows
            logger.warning("could not destroy activity %s on %s: %s", self.activity_id, self.info.id, exc)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
            stopper = self._stopper
        if stopper is not None:
            stopper.join()
        self._destroy()
        success = self._spoiled is None and not self._cancelled.is_set()
        self._terminate(success)
        self._services.rentals.ended(self)

    def _terminate(self, success: bool) -> None:
        reason = SUCCESS_REASON if success else CANCELLED_REASON
        try:
            self._services.client.market.terminate_agreement(self.agreement_id, reason)
        except Gone:
            logger.debug("agreement %s was terminated already", self.agreement_id)
        except ApiError as exc:
            logger.warning("could not terminate agreement %s with %s: %s", self.agreement_id, self.info.id, exc)
        self._services.sink.emit(AgreementTerminated(
            agreement_id=self.agreement_id, provider_id=self.info.id, provider_name=self.info.name,
            reason=str(reason["message"]), success=success))
