"""``GolemProvider``: rent providers on the Golem Network through a local yagna daemon.

What happens when:

* **built**: configuration is read (arguments, else ``YAGNA_APPKEY``/``YAGNA_API_URL``),
  the daemon is asked who we are, and an image tag is resolved in the image registry.
  A missing or refused key, no daemon, something else at the URL, or an unknown tag
  fail here, in seconds, before anything is reserved or spent.
* **first engage** (or :meth:`GolemProvider.start`): one allocation of the budget is
  made, the demand is subscribed, and the negotiation and payment threads start.
* **engage**: the best candidate provider gets an agreement (confirmed, approved), an
  activity, and ``deploy`` + ``start`` once; the session is then ready for batches.
  The demand is subscribed only while an engage is pending. When the scheduler sets
  engage's ``abort`` (the work no longer needs the provider) engage returns at once
  with :class:`EngagementCancelled`, having confirmed nothing more, and an agreement
  approved meanwhile is terminated without an activity.
* **release** of a session: its activity is destroyed and its agreement terminated.
* **scan** (any time, no allocation needed): the offers the daemon knows, judged as the
  demand would judge them, with a cost estimate; nothing is reserved or spent.
* **while no provider is engaged**: ``MarketStatus`` events and warnings say what the
  market shows; ``startup_timeout`` ends the wait with the causes and the fix.
* **while work runs**: the spend guard projects the agreements' cost at the job's pace
  (``job_pace``, fed by ``Golem``) and stops an agreement's work once its next debit-note
  interval would not fit, so its final invoice is accepted; ``SpendUpdated`` reports it.
* **close**: remaining sessions are ended, the demand withdrawn, invoices awaited for
  a bounded time and accepted, and the allocation released.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import AbstractSet, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import attrs

from ..._format import money, provider_label, token_of
from ...errors import (ApiError, BudgetExhausted, ConfigurationError, EngagementCancelled, ProviderError,
                       StartupTimeout)
from ...provider_record import RecordOption, open_record
from ..base import Permit, Provider, ProviderInfo
from .market.agreement import CANCELLED_TEXT, Candidate, CandidateFailed, agree, check_abort
from .activity.polling import BatchDeadline, BatchStopped, collect, send_batch
from ._client import Identity
from ._connect import Connection
from .market.demand import Demand, VmPayload, build_demand
from .market.manifest import Manifest, ManifestArg, provider_refusal
from ..outbound import check_outbound
from ._events import AgreementApproved, AgreementFailed, BudgetReached, Consumer, EventSink
from .market.scan import MarketScan, scan_market, unmatched_refusals
from .activity.exescript import deploy_command, start_command
from .activity.volumes import check_volumes, deploy_volumes, session_volumes
from .market.filters import CheapestFirst, OfferFilter, OfferPredicate, PreferRecorded, ProviderMatch, Score
from ._image import registry_url as find_registry
from ._image import registry_session, resolve_image
from .market.negotiator import Negotiator
from .market.runtime import GPU_RUNTIME, gpu_of, resolve_runtime
from .payment.models import MAINNETS, MarketDecoration, payment_platform
from .payment.pace import JobPace
from .payment.payments import Payments
from ._http.retry import DEFAULT_POLICIES, CallKind, RetryPolicy
from ._rentals import Rentals, SessionServices
from ._session import CANCELLED_REASON, GolemSession
from ._settings import (
    DEFAULT_ACCEPT_TIMEOUT,
    Timeouts,
    check_accept_timeout,
    check_budget,
    check_expiration,
    check_image,
    check_inline_limit,
    check_score,
    check_startup_timeout,
    check_subnet,
)
from .transfer.storage import Storage

logger = logging.getLogger(__name__)

__all__ = ("GolemProvider", "GolemSession")

#: Agreements a provider may reject in a row before it cools down (``Timeouts.cooldown``):
#: one rejection can be a race for its capacity ("No capacity available"); two are a pattern.
AGREEMENT_REJECTIONS = 2
#: Seconds of market scan spent explaining a startup timeout with no offer at all.
SILENCE_SCAN = 2.0



class GolemProvider(Provider):
    """Sessions on providers rented on the Golem Network, through a yagna daemon.

    Usage::

        from golem_tasks import Golem
        from golem_tasks.providers.yagna import GolemProvider

        with GolemProvider(image_tag="golem/alpine:latest", budget="0.5") as provider:
            with Golem(provider, max_workers=3) as golem:
                print(golem.run(lambda ctx: (yield ctx.run("/bin/date"))[0].stdout))
            print(provider.costs())

    Args:
        image_hash, image_tag: the VM image, by its sha3 hash or ``name:tag`` (resolved
            in the image registry). ``image_url`` (with ``image_hash``) skips the
            registry; ``payload`` gives a ready :class:`VmPayload` instead of all three.
        min_mem_gib, min_storage_gib, min_cpu_threads, min_cpu_cores, capabilities,
            runtime: what offers must have (``runtime`` defaults to ``vm``).
        gpu: rent a graphics card: the ``vm-nvidia`` runtime with the ``!exp:gpu``
            capability (:mod:`.market.runtime`); the card shows in the scan, the job
            summary and ``ProviderInfo.gpu``.
        volumes: extra directories the provider mounts into the VM at deploy, e.g.
            ``["/golem/resource"]`` (:mod:`.activity.volumes`); with them, batches may
            send into and download from those and ``/golem/input``, ``/golem/output``,
            ``/golem/work``, and other paths are refused where the batch is built.
        outbound: URLs the VM may reach (``["https://pypi.org"]``): the demand carries a
            computation payload manifest for them (payload: the image), and asks for
            offers with the ``inet`` and ``manifest-support`` capabilities. Providers
            accept it when they whitelist every URL's domain, trust its signature, or
            trust the node descriptor; those that do not are counted as ``outbound``
            in the startup feedback and the market scan.
        manifest: a ready manifest instead (JSON text, bytes, dict or base64), which a
            signature needs; ``manifest_sig``, ``manifest_sig_algorithm``,
            ``manifest_cert``: its signature (the audited-payload rule);
            ``node_descriptor``: a signed node descriptor (the partner rule);
            ``manifest_commands``: regular expressions of the ExeScript commands the
            generated manifest allows (default: any).
        budget: the most GLM spent in all (Decimal or decimal string). The spend guard
            projects what the engaged agreements will cost at the job's pace (``Golem``
            feeds :attr:`job_pace`), engages no provider whose projected cost would not
            fit, and stops running work a debit-note interval before the budget, so
            every final invoice is accepted (``SpendUpdated`` events say the spend live).
        network: the payment network: ``hoodi`` (the default testnet), ``holesky``,
            ``sepolia``, ``amoy`` (test GLM), ``polygon`` (Golem's mainnet) or ``mainnet``
            (real GLM); any other name is refused with the list. ``payment_network`` is
            the older name of the same argument.
        mainnet: pay real GLM: ``mainnet=True`` means ``network="polygon"``.
        payment_driver: the payment driver (``erc20``).
        subnet_tag: the market subnet (``public``).
        expiration: how long an agreement may last: 5-30 min, or up to 10 h with a
            debit-note accept timeout (default 1 h, or 25 min without one).
        debit_note_accept_timeout: seconds within which debit notes are promised to be
            accepted (5-240); None negotiates none. With it, an offer's mid-agreement
            payment terms (debit-note interval, payment timeout) are agreed as offered:
            its debit notes are then accepted and paid by the daemon during the run.
        allow_providers, deny_providers: provider ids, names or compiled regexes.
        offer_filter: ``offer_filter(proposal) -> bool``, any custom rule.
        max_start_price, max_cpu_hour_price, max_env_hour_price: price caps (GLM).
        score: ``score(proposal) -> float``; the highest is engaged first. The default
            prefers the cheapest expected cost.
        app_key, api_url: the daemon; default ``YAGNA_APPKEY``, ``YAGNA_API_URL``.
        registry_url: the image registry that resolves ``image_tag``; default
            ``GOLEM_TASKS_REGISTRY_URL``, else ``https://registry.golem.network``
            (``golem-tasks localnet up`` prints a loopback one).
        storage: moves data too large to go inline: ``"gftp"`` (the default: GFTP through
            the daemon's GSB API, no ``gftp`` binary, nothing opened until the first large
            transfer), a :class:`Storage` of your own, or None (inline only, so larger data
            fails before anything is sent).
        inline_limit: data up to this many bytes travels inside the ExeScript even with
            a storage (at most 512 KiB).
        timeouts: the :class:`Timeouts` of every wait.
        startup_timeout: most seconds to wait while no provider is engaged; past it, and
            with no agreement or deploy under way, ``engage`` raises
            :class:`~golem_tasks.errors.StartupTimeout` naming what the market showed and
            the fix, which ends the job (``BrokenPool``). None (the default): engage waits
            up to ``Timeouts.negotiation`` each time. Meanwhile a :class:`MarketStatus`
            event reports every change and a warning is logged every ``Timeouts.report`` s.
        events: a consumer, or several, of the records in :mod:`._events`.
        provider_record: how providers did in earlier runs, kept in a file
            (:mod:`golem_tasks.provider_record`): True (default) the user's cache
            directory, a path, a ``ProviderRecord``, or False for none. Providers that
            failed repeatedly in recent runs are refused; reliable ones are preferred.
        policies: retry policy per kind of REST call.

    Raises:
        ConfigurationError: a bad argument, no app key, an unknown image.
        ApiError: the daemon is not running, not yagna, or refuses the key.
    """

    default_max_workers = 5  # yapapi's default
    paid_engagement = True  # each engagement is an agreement the provider invoices

    def __init__(self, *, image_hash: Optional[str] = None, image_tag: Optional[str] = None,
                 image_url: Optional[str] = None, payload: Optional[VmPayload] = None,
                 min_mem_gib: float = 0.5, min_storage_gib: float = 2.0, min_cpu_threads: int = 1,
                 min_cpu_cores: Optional[int] = None, capabilities: Iterable[str] = (),
                 runtime: Optional[str] = None, gpu: bool = False, volumes: Iterable[str] = (),
                 budget: Union[Decimal, str, int] = Decimal("1"), network: Optional[str] = None,
                 mainnet: bool = False, payment_driver: str = "erc20", payment_network: Optional[str] = None,
                 subnet_tag: str = "public", expiration: Optional[timedelta] = None,
                 debit_note_accept_timeout: Optional[int] = DEFAULT_ACCEPT_TIMEOUT,
                 allow_providers: Iterable[ProviderMatch] = (), deny_providers: Iterable[ProviderMatch] = (),
                 offer_filter: Optional[OfferPredicate] = None, max_start_price: Any = None,
                 max_cpu_hour_price: Any = None, max_env_hour_price: Any = None, score: Optional[Score] = None,
                 app_key: Optional[str] = None, api_url: Optional[str] = None,
                 registry_url: Optional[str] = None, storage: Union[Storage, str, None] = "gftp",
                 inline_limit: int = 256 * 1024, timeouts: Optional[Timeouts] = None,
                 startup_timeout: Optional[float] = None,
                 events: Union[Consumer, Iterable[Consumer], None] = None,
                 policies: Mapping[CallKind, RetryPolicy] = DEFAULT_POLICIES,
                 provider_record: RecordOption = True, outbound: Optional[Iterable[str]] = None,
                 manifest: ManifestArg = None, manifest_sig: Union[str, bytes, None] = None,
                 manifest_sig_algorithm: Optional[str] = None, manifest_cert: Union[str, bytes, None] = None,
                 node_descriptor: Optional[Mapping[str, Any]] = None,
                 manifest_commands: Optional[Iterable[str]] = None) -> None:
        self.budget = check_budget(budget)
        manifest_options = Manifest.check(  # outbound hook (outbound13): checked before any call
            outbound=check_outbound(outbound), manifest=manifest, manifest_sig=manifest_sig,
            manifest_sig_algorithm=manifest_sig_algorithm, manifest_cert=manifest_cert,
            node_descriptor=node_descriptor, commands=None if manifest_commands is None else list(manifest_commands))
        if network is not None and payment_network is not None and network != payment_network:
            raise ConfigurationError(f"network={network!r} and payment_network={payment_network!r} disagree; "
                                     "give network= only")
        self.platform = payment_platform(network or payment_network, driver=payment_driver, mainnet=mainnet)
        self.subnet_tag = check_subnet(subnet_tag)
        self.accept_timeout = check_accept_timeout(debit_note_accept_timeout)
        self.expiration = check_expiration(expiration, self.accept_timeout)
        self.offer_filter = OfferFilter(allow=allow_providers, deny=deny_providers, predicate=offer_filter,
                                        max_start_price=max_start_price, max_cpu_hour_price=max_cpu_hour_price,
                                        max_env_hour_price=max_env_hour_price, token=token_of(self.platform))
        self.score = check_score(score) or CheapestFirst()
        self.inline_limit = check_inline_limit(inline_limit)
        self.timeouts = timeouts or Timeouts()
        self.startup_timeout = check_startup_timeout(startup_timeout)
        self.sink = EventSink()
        for consumer in ([events] if callable(events) else list(events or ())):
            self.sink.add(consumer)
        runtime, capabilities = resolve_runtime(runtime, capabilities, gpu)  # GPU runtime hook (gpu13)
        self.volumes = check_volumes(volumes)
        hardware = dict(min_mem_gib=min_mem_gib, min_storage_gib=min_storage_gib, min_threads=min_cpu_threads,
                        min_cores=min_cpu_cores, capabilities=capabilities, runtime=runtime)
        if payload is None:
            check_image(image_hash, image_tag, image_url)
        elif not isinstance(payload, VmPayload):
            raise ConfigurationError(f"payload must be a VmPayload, got {payload!r}")
        elif gpu and payload.runtime != GPU_RUNTIME:
            raise ConfigurationError(f"gpu=True needs a payload with runtime={GPU_RUNTIME!r}, "
                                     f"not {payload.runtime!r}")
        self._connection = Connection.from_env(app_key=app_key, api_url=api_url, policies=policies)
        try:
            self.identity: Identity = self._connection.check()
            self.payload = payload or self._payload(image_hash, image_tag, image_url, find_registry(registry_url),
                                                    hardware)
            #: The manifest the demand carries (None without outbound access).
            self.manifest = Manifest.build(image_hash=self.payload.image_hash, image_url=self.payload.image_url,
                                           **manifest_options)
            self.client = self._connection.client()
            self.storage, self._owns_storage = self._storage(storage)
        except BaseException:
            self._connection.close()
            raise
        # provider record hook (beyond11), opened last so a failed start leaks no file:
        # the record (fed by Golem with the scheduler's events) refuses providers that
        # failed repeatedly and ranks the rest.
        self.provider_record = open_record(provider_record)
        if self.provider_record is not None:
            self.offer_filter = attrs.evolve(self.offer_filter, skip=self.provider_record.skip)
            self.score = PreferRecorded(self.score, self.provider_record.score)
        self._assemble()

    def _assemble(self) -> None:
        """The parts that do the work, and the state they share."""
        self._poller = self._connection.interruptible()  # payment polls ended at close, not waited out
        #: The jobs' pace, learnt from the scheduler's fragment events (``Golem`` feeds
        #: it, as it feeds ``provider_record``): the spend guard's projections use it.
        self.job_pace = JobPace()
        self._payments = Payments(self.client, budget=self.budget, platform=self.platform,
                                  allocation_ttl=self.timeouts.allocation, poll=self.timeouts.payment_poll,
                                  sink=self.sink, on_over_budget=self._over_budget,
                                  events_client=self._poller.client(), interrupt=self._poller.interrupt,
                                  horizon=self.job_pace.horizon)
        self._market = Negotiator(self.client, build_demand=self._build_demand, platform=self.platform,
                              offer_filter=self.offer_filter, score=self.score, accept_timeout=self.accept_timeout,
                              budget=self.budget, remaining_budget=lambda: self._payments.remaining,
                              timeouts=self.timeouts, startup_timeout=self.startup_timeout,
                              scan_unmatched=lambda: unmatched_refusals(self.scan(seconds=SILENCE_SCAN)),
                              sink=self.sink, app_session_id=f"golem_tasks-{uuid.uuid4().hex[:12]}")
        self._lock = threading.Lock()
        self._rentals = Rentals(self._market, self._payments)
        self._services = SessionServices(client=self.client, timeouts=self.timeouts, storage=self.storage,
                                         inline_limit=self.inline_limit, sink=self.sink, rentals=self._rentals)
        self._decoration: Optional[MarketDecoration] = None
        self._started = self._closed = False
        #: The abort events of the engages in flight: close() sets them and waits for
        #: the engages to end, so what they made is released and paid before it settles.
        self._engaging: List[threading.Event] = []
        self._engages_ended = threading.Condition(self._lock)
        self._budget_spent: Optional[BudgetExhausted] = None
        self._rejections: Dict[str, int] = {}  # agreements each provider rejected
        self._budget_warned = False

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **options: Any) -> "GolemProvider":
        """A provider configured by the environment, ``options`` winning:
        ``GOLEM_TASKS_IMAGE`` (a tag ``name:tag`` or a hash), ``GOLEM_TASKS_BUDGET``,
        ``YAGNA_SUBNET``, ``YAGNA_PAYMENT_DRIVER``, ``YAGNA_PAYMENT_NETWORK`` (the
        ``network``: ``polygon`` or ``mainnet`` pays real GLM), plus ``YAGNA_APPKEY``, ``YAGNA_API_URL`` and
        ``GOLEM_TASKS_REGISTRY_URL`` (where tags are resolved)."""
        env = os.environ if environ is None else environ
        found: Dict[str, Any] = {}
        image = env.get("GOLEM_TASKS_IMAGE")
        if image:
            found["image_tag" if ":" in image else "image_hash"] = image
        for variable, name in (("GOLEM_TASKS_BUDGET", "budget"), ("YAGNA_SUBNET", "subnet_tag"),
                               ("YAGNA_PAYMENT_DRIVER", "payment_driver"),
                               ("YAGNA_PAYMENT_NETWORK", "network")):
            if env.get(variable):
                found[name] = env[variable]
        found["mainnet"] = found.get("network") in MAINNETS
        found.update(options)
        if not any(found.get(key) for key in ("image_tag", "image_hash", "payload")):
            raise ConfigurationError("no image: set GOLEM_TASKS_IMAGE to a tag (golem/alpine:latest) or a "
                                     "hash, or pass image_tag=/image_hash=")
        return cls(**found)

    def __repr__(self) -> str:
        return (f"<GolemProvider {self._connection.api_url} {self.platform} budget={self.budget} "
                f"{'closed' if self._closed else 'started' if self._started else 'idle'}>")

    # ------------------------------------------------------------------ set up
    def _payload(self, image_hash: Optional[str], image_tag: Optional[str], image_url: Optional[str],
                 registry_url: str, hardware: Dict[str, Any]) -> VmPayload:
        if image_url is not None:
            assert image_hash is not None  # check_image made sure
            return VmPayload(image_hash=image_hash, image_url=image_url, **hardware)
        with registry_session(registry_url) as http:
            sha3, url = resolve_image(http, registry_url, image_tag=image_tag, image_hash=image_hash)
        return VmPayload(image_hash=sha3, image_url=url, **hardware)

    def _storage(self, storage: Union[Storage, str, None]) -> Tuple[Optional[Storage], bool]:
        """The storage, and whether this provider made it (and so closes it)."""
        if storage is None or isinstance(storage, Storage):
            return storage, False
        if storage != "gftp":
            raise ConfigurationError(f"storage must be a Storage, 'gftp' or None, got {storage!r}")
        try:
            from .transfer.gftp import GsbGftpStorage
        except ImportError as exc:
            raise ConfigurationError(f"storage='gftp' needs its WebSocket and flexbuffers libraries ({exc}): "
                                     "pip install websocket-client flatbuffers") from exc
        return GsbGftpStorage(self.client, node_id=self.identity.identity), True

    def _build_demand(self) -> Demand:
        manifest = self.manifest
        return build_demand(self.payload, expiration=self.expiration, subnet=self.subnet_tag,
                            decoration=self._decoration, debit_note_accept_timeout=self.accept_timeout,
                            properties=manifest.properties() if manifest else None,
                            constraints=manifest.constraints() if manifest else ())

    def start(self) -> None:
        """Reserve the budget and start looking for providers (the first ``engage`` does
        this by itself; call it to see an allocation error early). Idempotent."""
        with self._lock:
            if self._closed:
                raise ProviderError("this GolemProvider is closed; create a new one")
            if self._started:
                return
            try:
                self._decoration = self._payments.start()
                self._market.start()
            except BaseException:
                self._payments.abandon()  # give back an allocation made before the failure
                raise
            self._started = True

    # ------------------------------------------------------------------ engage
    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None) -> GolemSession:
        """An approved agreement with a provider not in ``exclude``, its activity
        deployed and started. Tries candidates until one works or the negotiation
        timeout passes.

        ``abort`` is the scheduler's way to say the work no longer needs this engagement:
        once it is set, engage returns promptly, confirms no agreement, and terminates
        one the provider approved meanwhile without creating an activity. ``permit``,
        when given, holds the engagement before it takes a candidate, reserves budget
        or signs, until the scheduler allows it; the demand stays subscribed meanwhile.

        Raises:
            BudgetExhausted: the budget does not cover the next provider's start price,
                its projected cost at the job's pace, or its stop margin (on top of what
                the agreements made will cost), or it is spent.
            StartupTimeout: no provider was engaged within ``startup_timeout``.
            EngagementCancelled: ``abort`` was set (not a failure).
            ProviderError: no provider could be engaged in time, or the provider is closed.
        """
        check_abort(abort)
        self.start()
        abort = abort if abort is not None else threading.Event()  # close() calls it off
        with self._lock:
            if self._closed:
                raise ProviderError("this GolemProvider is closed; create a new one")
            self._engaging.append(abort)
        try:
            self._market.exclude(exclude)
            with self._market.engaging():
                return self._engage(abort, permit)
        finally:
            with self._lock:
                self._engaging.remove(abort)
                self._engages_ended.notify_all()

    def _engage(self, abort: threading.Event, permit: Optional[Permit]) -> GolemSession:
        if permit is not None:
            # The demand is subscribed (engaging()), so offers are countered and their
            # drafts kept meanwhile; nothing is taken, reserved or signed until the
            # scheduler allows it: a held engage keeps no draft from the one allowed.
            permit.wait_unless(abort)
            check_abort(abort)
        deadline = time.monotonic() + self.timeouts.negotiation
        while True:
            if self._budget_spent is not None:
                raise self._budget_spent
            try:
                candidate = self._market.take(deadline, abort)
            except StartupTimeout as exc:
                raise self._explained(exc) from None
            token = f"reservation-{uuid.uuid4().hex}"
            try:
                if not self._reserve(token, candidate, deadline, abort):
                    continue  # invoices came in that may leave room: take a candidate again
                return self._open(candidate, abort, token)
            except CandidateFailed as exc:
                self._candidate_failed(candidate, exc)
            finally:
                self._payments.unreserve(token)  # a no-op once its agreement is tracked
                if not self._rentals.engaged(candidate.proposal.provider_id):
                    self._market.release(candidate.proposal.provider_id)

    def _explained(self, timeout: StartupTimeout) -> StartupTimeout:
        """With no offer at all, a market scan says why: offers on another subnet or
        payment network, or short of the image's needs (made once, by the first warning
        or here)."""
        ledger = self._market.ledger
        if ledger.offers:
            return timeout
        if not ledger.was_scanned:
            try:
                ledger.scanned(unmatched_refusals(self.scan(seconds=SILENCE_SCAN)))
            except ApiError as exc:
                logger.debug("the market scan that would explain the silence failed: %s", exc)
                return timeout
        text, reasons = ledger.explain()
        return StartupTimeout(f"no Golem provider was engaged within startup_timeout={self.startup_timeout:g} s: "
                              f"{text}", reasons=reasons)

    def scan(self, *, seconds: float = 5.0, **_: Any) -> MarketScan:
        """The market as our demand would see it, reserving and spending nothing: the
        offers it would take (cheapest first) and the others with the reason each would
        be refused (subnet, payment network, hardware, filters, price caps, budget).
        Waits up to ``seconds`` for the first offers, less once the daemon's offer store
        is read through.

        ``scan().estimate(fragments, seconds, providers)`` prices a job on the cheapest
        matching offers; ``golem-tasks market scan`` prints both."""
        return scan_market(self.client.market, seconds=seconds, payload=self.payload, subnet=self.subnet_tag,
                           platform=self.platform, offer_filter=self.offer_filter, budget=self.budget,
                           manifest=self.manifest)

    def _reserve(self, token: str, candidate: Candidate, deadline: float,
                 abort: Optional[threading.Event]) -> bool:
        """Hold the candidate's start price (True), or say why the budget does not allow
        it (BudgetExhausted); False when the refusal was only for invoices still to come,
        and they came in before ``deadline``: the budget may allow it now."""
        proposal = candidate.proposal
        try:
            self._payments.reserve(token, provider_label(proposal.provider_name, proposal.provider_id),
                                   candidate.terms)
            return True
        except BudgetExhausted as exc:
            self._market.put_back(candidate)  # the next engage reports the budget at once too
            if not exc.final and not self._payments.active():
                # Nothing else runs or is being engaged: only ended agreements' invoices
                # (a lost provider's, say) hold back the margins kept for them. Once
                # they are in the candidate may fit, so wait for them, not fail the job.
                logger.info("waiting for invoices still to come before engaging another provider: %s", exc)
                if self._payments.wait_for_invoices(deadline, abort):
                    return False
            self._budget_reached(exc)
            if exc.final:
                # Nothing runs, is being engaged or is still to be invoiced: nothing ever
                # will fit (spending only grows), so every engage, and every wait for a
                # candidate, says so at once.
                self._budget_spent = exc
                self._market.refuse_all(exc)
            raise

    def _budget_reached(self, exc: BudgetExhausted) -> None:
        # Every slot of the scheduler may ask again: warn once, the events say each time.
        with self._lock:
            first, self._budget_warned = not self._budget_warned, True
        logger.log(logging.WARNING if first else logging.DEBUG, "%s", exc)
        self.sink.emit(BudgetReached(reason=str(exc), budget=self.budget, spent=exc.spent or Decimal(0),
                                     expected=exc.expected or Decimal(0), projected=exc.projected))

    def _candidate_failed(self, candidate: Candidate, exc: CandidateFailed) -> None:
        proposal = candidate.proposal
        logger.warning("provider %s could not be engaged: %s",
                       provider_label(proposal.provider_name, proposal.provider_id), exc)
        self.sink.emit(AgreementFailed(agreement_id=exc.agreement_id, provider_id=proposal.provider_id,
                                       provider_name=proposal.provider_name, reason=str(exc)))
        if exc.rejected:
            with self._lock:
                count = self._rejections[proposal.provider_id] = self._rejections.get(proposal.provider_id, 0) + 1
            if count >= AGREEMENT_REJECTIONS:  # its next offer would only be rejected again soon
                with self._lock:
                    self._rejections.pop(proposal.provider_id, None)
                logger.info("provider %s rejected %d agreements; not trying it for %g s",
                            provider_label(proposal.provider_name, proposal.provider_id), count,
                            self.timeouts.cooldown)
                self._market.cool_down(proposal.provider_id, f"it rejected {count} agreements ({exc})")
            else:
                self._market.ledger.refused(proposal.provider_id, provider_refusal(str(exc)))

    def _open(self, candidate: Candidate, abort: Optional[threading.Event], reservation: str) -> GolemSession:
        proposal = candidate.proposal
        agreement_id = agree(self.client.market, candidate, approval=self.timeouts.approval,
                             app_session_id=self._market.app_session_id, abort=abort)
        self.sink.emit(AgreementApproved(agreement_id=agreement_id, provider_id=proposal.provider_id,
                                         provider_name=proposal.provider_name))
        self._payments.track(agreement_id, proposal.provider_id, candidate.terms, reservation,
                             proposal.provider_name)
        if abort is not None and abort.is_set():
            # Approved after the work stopped needing it: end it before any activity exists
            # (its invoice, if any, is still accepted at close).
            logger.info("agreement %s with %s approved after engaging was called off: terminated",
                        agreement_id, provider_label(proposal.provider_name, proposal.provider_id))
            self._abandon(agreement_id, None)
            raise EngagementCancelled(CANCELLED_TEXT)
        activity_id = None
        try:
            activity_id = self.client.activity.create_activity(agreement_id, timeout=self.timeouts.activity)
            # Creating an activity waits on the daemon's 750 ms ticks: the queue may have
            # drained meanwhile, and a deploy then would only keep the provider billing.
            check_abort(abort)
            self._deploy(activity_id, proposal.provider_id, abort)
        except BaseException as exc:
            self._abandon(agreement_id, activity_id)
            if isinstance(exc, (ApiError, CandidateFailed)):
                # It may not run our image, or it had a passing fault: not again for a while.
                self._market.cool_down(proposal.provider_id, f"it could not start work: {exc}")
                raise CandidateFailed(f"agreement {agreement_id} could not start work: {exc}",
                                      agreement_id) from exc
            raise
        gpu = gpu_of(proposal.properties)  # the card shows wherever the provider's name does
        info = ProviderInfo(id=proposal.provider_id,
                            name=proposal.provider_name if gpu is None else f"{proposal.provider_name} ({gpu.label})",
                            properties={**proposal.properties, "agreement_id": agreement_id,
                                        "activity_id": activity_id},
                            volumes=session_volumes(self.volumes), gpu=gpu)
        session = GolemSession(self._services, self._connection, info, agreement_id, activity_id)
        self._rentals.add(session)
        if self._payments.stopped(agreement_id):
            # A debit note that came while it deployed asked for its work to stop before
            # the session could be found (_over_budget found none to stop): stop it here,
            # added first so that one of the two always sees the other.
            session.release()
            raise self._budget_spent or self._budget_error(
                session.label, "was asked to stop by a debit note that came while it deployed")
        with self._lock:
            closed = self._closed
        if closed:
            session.release()
            raise ProviderError("the GolemProvider was closed while engaging")
        logger.info("engaged %s: agreement %s, activity %s", provider_label(info.name, info.id), agreement_id,
                    activity_id)
        self._market.mark_engaged(info.id)
        return session

    def _deploy(self, activity_id: str, provider_id: str, abort: Optional[threading.Event]) -> None:
        """``deploy`` and ``start``, once per engaged provider, in one batch."""
        api = self.client.activity
        stop = abort or threading.Event()
        deploy = deploy_command(volumes=deploy_volumes(self.volumes))
        batch_id = send_batch(api, activity_id, [deploy, start_command()], provider_id)
        try:
            results = collect(api, activity_id, batch_id, 2, deadline=time.monotonic() + self.timeouts.deploy,
                              poll=self.timeouts.poll, stop=stop, provider=provider_id)
        except BatchDeadline:
            raise CandidateFailed(f"deploy did not finish within {self.timeouts.deploy:g} s") from None
        except BatchStopped:
            raise EngagementCancelled(CANCELLED_TEXT) from None
        for result in results.values():
            if not result.ok:
                step = "deploy" if result.index == 0 else "start"
                raise CandidateFailed(f"{step} failed: {result.message or result.stderr or 'no reason given'}")

    def _abandon(self, agreement_id: str, activity_id: Optional[str]) -> None:
        """Undo a half-made engagement: destroy the activity, terminate the agreement."""
        if activity_id is not None:
            try:
                self.client.activity.destroy_activity(activity_id, timeout=self.timeouts.destroy)
            except ApiError as exc:
                logger.debug("destroying activity %s: %s", activity_id, exc)
        try:
            self.client.market.terminate_agreement(agreement_id, CANCELLED_REASON)
        except ApiError as exc:
            logger.debug("terminating agreement %s: %s", agreement_id, exc)
        self._payments.terminated(agreement_id)

    # -------------------------------------------------------------- bookkeeping
    def _over_budget(self, agreement_id: str, why: str) -> None:
        """A debit note would break the budget, or the agreement's next debit-note
        interval would not fit (``why`` says which): stop that work, engage no more."""
        sessions = self._rentals.of_agreement(agreement_id)
        who = ", ".join(sorted({s.label for s in sessions})) or "a provider"
        error = self._budget_error(who, why)
        first = self._budget_spent is None
        self._budget_spent = error
        self._market.refuse_all(error)  # engaging slots stop waiting for candidates
        if first:
            self._budget_reached(error)
        for session in sessions:
            session.stop_work(str(error))

    def _wait_for_engages(self, deadline: float) -> None:
        """Until the engages called off by close() have ended (each releases what it
        got, so its agreement is terminated and its invoice due before the payments
        settle), or ``deadline``."""
        with self._lock:
            while self._engaging:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("closing with %d engagement(s) still ending; their invoices may be missed",
                                   len(self._engaging))
                    return
                self._engages_ended.wait(remaining)

    def _budget_error(self, who: str, why: str) -> BudgetExhausted:
        spent, expected = self._payments.committed, self._payments.expected
        m = self._money
        return BudgetExhausted(
            f"the budget of {m(self.budget)} is spent: {m(spent)} accepted so far, and {who} {why}, so its work "
            f"was stopped while its final invoice fits; give a larger budget= to go on",
            budget=self.budget, spent=spent, expected=expected)

    def _money(self, amount: Decimal) -> str:
        return money(amount, token_of(self.platform))

    def costs(self) -> Dict[str, Decimal]:
        """GLM accepted so far per provider id (invoices, else debit notes)."""
        return self._payments.costs()

    @property
    def total_cost(self) -> Decimal:
        """GLM accepted so far, in all."""
        return self._payments.committed

    def unpaid_agreements(self) -> Tuple[str, ...]:
        """Ended agreements whose invoice has not been accepted (yet)."""
        return self._payments.unpaid()

    def add_event_consumer(self, consumer: Consumer) -> None:
        """Call ``consumer(event)`` for every event of :mod:`._events` from now on."""
        self.sink.add(consumer)

    # --------------------------------------------------------------------- close
    def close(self) -> None:
        """End every session (as cancelled), call off the engages in flight (their
        ``abort`` is set), withdraw the demand, wait a bounded time for invoices and
        accept them, release the allocation. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = self._rentals.live()
            started = self._started
            engaging = list(self._engaging)
        for abort in engaging:
            abort.set()
        try:
            for session in sessions:
                session.cancel()
                session.release()
            if started:
                self._market.stop()
                deadline = time.monotonic() + self.timeouts.invoices
                self._wait_for_engages(deadline)
                self._payments.finish(wait=max(0.0, deadline - time.monotonic()))
        finally:
            if self._owns_storage and self.storage is not None:
                self.storage.close()
            self._poller.close()
            self._connection.close()
            if self.provider_record is not None:  # provider record hook (beyond11)
                self.provider_record.close()
