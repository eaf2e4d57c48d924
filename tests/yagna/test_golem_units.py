"""The Golem provider's pure parts: the shell snippets (run for real with /bin/sh),
offer filters and scores, settings, the event sink."""

import base64
import logging
import re
import subprocess
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from golem_tasks.commands import Run
from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.yagna import CheapestFirst, OfferFilter, OfferRejected, Proposal, Timeouts
from golem_tasks.providers.yagna._events import EventSink
from golem_tasks.providers.yagna.payment.payments import AgreementCost, _price_of
from golem_tasks.providers.yagna.activity.plan import (
    EXIT_MARK,
    inline_read,
    inline_send,
    keep_going_run,
    split_exit_code,
)

from .yagna_samples import PROVIDER, offer_properties


def run_json(command, tmp_path):
    body = command["run"]
    args = [a.replace("/golem/", f"{tmp_path}/golem/") for a in [body["entry_point"], *body["args"]]]
    return subprocess.run(args, capture_output=True, text=True)


def test_inline_send_writes_any_bytes_in_chunks(tmp_path):
    data = bytes(range(256)) * 1000  # 256 KB: several arguments of at most 96 KiB each
    command = inline_send(data, "/golem/input/deep/blob", executable=True)
    assert all(len(arg) <= 96 * 1024 for arg in command["run"]["args"])
    assert run_json(command, tmp_path).returncode == 0
    written = tmp_path / "golem/input/deep/blob"
    assert written.read_bytes() == data and written.stat().st_mode & 0o100


def test_inline_read_returns_base64_and_refuses_big_files(tmp_path):
    (tmp_path / "golem").mkdir()
    (tmp_path / "golem/f").write_bytes(b"\x00\xffdata")
    done = run_json(inline_read("/golem/f", 100), tmp_path)
    assert base64.b64decode(done.stdout) == b"\x00\xffdata"
    too_big = run_json(inline_read("/golem/f", 3), tmp_path)
    assert too_big.returncode == 3 and "is 6 bytes, over the limit of 3" in too_big.stderr
    assert run_json(inline_read("/golem/none", 3), tmp_path).returncode == 2


def test_the_keep_going_wrapper_reports_the_real_exit_code(tmp_path):
    done = run_json(keep_going_run(Run(("sh", "-c", "printf partial >&2; exit 4"), env={"A": "1"},
                                       check=False)), tmp_path)
    assert done.returncode == 0
    assert split_exit_code(done.stderr) == (4, "partial")


@pytest.mark.parametrize("stderr, expected", [
    (f"boom\n\n{EXIT_MARK}2\n", (2, "boom\n")),
    (f"\n{EXIT_MARK}0\n", (0, "")),
    ("no report", (None, "no report")),
    (f"\n{EXIT_MARK}1\ntrailing", (None, f"\n{EXIT_MARK}1\ntrailing")),
])
def test_split_exit_code(stderr, expected):
    assert split_exit_code(stderr) == expected


def test_env_names_are_checked():
    with pytest.raises(ConfigurationError, match="not a shell variable name"):
        keep_going_run(Run(("true",), env={"BAD-NAME": "x"}, check=False))


def offer(name="provider-1", coeffs=(0.0001, 0.0002, 0.01), **extra):
    properties = offer_properties()
    properties["golem.node.id.name"] = name
    if coeffs is None:
        del properties["golem.com.pricing.model.linear.coeffs"]
    else:
        properties["golem.com.pricing.model.linear.coeffs"] = list(coeffs)
    properties.update(extra)
    return Proposal(proposal_id="P", issuer_id=PROVIDER, state="Initial", timestamp=datetime.now(timezone.utc),
                    properties=properties)


def test_filters_match_ids_names_and_patterns():
    assert OfferFilter(deny=[PROVIDER]).reject_reason(offer()).startswith("denied provider")
    assert OfferFilter(deny=[re.compile("^0xb2")]).reject_reason(offer()).startswith("denied provider")
    assert OfferFilter(allow=["provider-1"]).reject_reason(offer()) is None
    assert OfferFilter(allow="provider-9").reject_reason(offer()) == "not in the allowed providers"


def test_offers_without_a_sound_linear_price_are_refused():
    assert "no linear pricing" in OfferFilter().reject_reason(offer(coeffs=None))
    assert OfferFilter().reject_reason(offer(coeffs=(-1, 0, 0))) == "negative prices in the offer"


def test_price_caps_are_inclusive():
    caps = OfferFilter(max_start_price="0.01", max_cpu_hour_price="0.72", max_env_hour_price="0.36")
    assert caps.reject_reason(offer()) is None
    assert "over the cap" in OfferFilter(max_start_price="0.0099").reject_reason(offer())


def test_cheapest_first_weighs_start_and_hourly_prices():
    score = CheapestFirst(seconds=600)
    cheap_start = offer(coeffs=(0.001, 0.001, 0.0))      # 0 + 0.6 + 0.6
    cheap_hours = offer(coeffs=(0.0, 0.0, 0.5))          # 0.5
    assert score(cheap_hours) > score(cheap_start)
    assert CheapestFirst(seconds=60)(cheap_start) > CheapestFirst(seconds=60)(cheap_hours)


def test_the_price_of_a_usage_vector():
    account = AgreementCost(provider_id="p", pricing=offer().pricing,
                      usage_names=("golem.usage.duration_sec", "golem.usage.cpu_sec"))
    assert _price_of(account, [10, 5.5]) == Decimal("0.0121")
    assert _price_of(account, [10]) is None
    assert _price_of(account, None) is None


def test_timeouts_must_be_positive():
    with pytest.raises(ConfigurationError, match="Timeouts.poll must be a positive"):
        Timeouts(poll=0)


def test_a_failing_event_consumer_is_logged_not_raised(caplog):
    sink, seen = EventSink(), []
    sink.add(lambda event: 1 / 0)
    sink.add(seen.append)
    event = OfferRejected(provider_id="p", provider_name="n", proposal_id="P", reason="r")
    with caplog.at_level(logging.ERROR):
        sink.emit(event)
    assert seen == [event] and "event consumer" in caplog.text
    with pytest.raises(TypeError):
        sink.add("not callable")
