"""Mid-agreement payments on the real daemon (issue 9 item 8): a provider that proposes
them gets them; its debit notes are payable (``paymentDueDate``), accepted during the
run, and the requestor's daemon pays each one on its payment cycle before the invoice.

"Paid" here is what a daemon with no mined chain can show: the payment cycle covers
the debit note from the allocation and hands it to the erc20 driver (its log line
``Total covered debit note obligation``); the transaction itself is never mined by
the loopback chain stub."""

from __future__ import annotations

import re
import threading
from typing import Any, List

import pytest
import requests

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.provider.offer import OfferSpec
from golem_tasks.providers.yagna import DebitNoteAccepted, GolemProvider, InvoiceAccepted

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally
COVERED = re.compile(r'Total covered debit note obligation Some\("([^"]+)"\)')


def sixty_seconds(ctx, _):
    results = yield ctx.run("/bin/sh", "-c", "sleep 60; echo done")
    return results[0].stdout.strip()


def test_a_long_fragment_has_its_debit_notes_accepted_and_paid_before_the_invoice(exeunit_ready):
    offer = OfferSpec(debit_note_interval=10, payment_timeout=30)
    with LocalNet(providers=1, negotiators=[Negotiator(offer=offer)], binary=exeunit_ready) as net:
        assert net.requestor is not None and net.daemon is not None
        collected: List[Any] = []
        lock = threading.Lock()

        def record(event: Any) -> None:
            with lock:
                collected.append(event)

        provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", events=record,
                                 **IMAGE)
        try:
            with Golem(provider, max_workers=1, progress=False) as golem:
                assert golem.run(sixty_seconds, None) == "done"
                # Still engaged: the agreement is not terminated, so no invoice exists yet.
                with lock:
                    accepted = [e.document_id for e in collected if isinstance(e, DebitNoteAccepted)]
                    assert not any(isinstance(e, InvoiceAccepted) for e in collected)
                with open(net.daemon.log_path, errors="replace") as log:
                    paid = set(COVERED.findall(log.read()))
        finally:
            provider.close()
        notes = requests.get(net.api_url + "/payment-api/v1/debitNotes", timeout=10,
                             headers={"Authorization": f"Bearer {net.requestor.app_key}"}).json()
    assert len(accepted) >= 4  # 60 s at a 10 s interval
    assert all(note.get("paymentDueDate") for note in notes)  # payable: mid-agreement payments agreed
    # Each accepted debit note is paid on the next payment cycle (every 5 s here); only
    # the last one may still wait for it when the fragment ends.
    assert set(accepted[:-1]) <= paid and len(paid) >= 3
    assert any(isinstance(e, InvoiceAccepted) for e in collected)
    assert not provider.unpaid_agreements()
