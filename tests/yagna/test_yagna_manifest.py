"""Outbound internet on Golem (issue 13 item 1): the manifest a demand carries for
``outbound=[...]``, the properties and capability constraints providers read, bad input
refused before anything is spent, and offers refused for the manifest counted as
``outbound`` in the startup feedback and the market scan (on the fake daemon)."""

from __future__ import annotations

import re

import base64
import json
import threading
from datetime import datetime, timezone
from typing import Any, Dict, List

import attrs
import pytest

from golem_tasks import BrokenPool, Golem
from golem_tasks.errors import ConfigurationError
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.providers.yagna import MarketStatus
from golem_tasks.providers.yagna.market.manifest import (
    NODE_DESCRIPTOR,
    PAYLOAD,
    PAYLOAD_CERT,
    PAYLOAD_SIG,
    PAYLOAD_SIG_ALGORITHM,
    UNTRUSTED,
    Manifest,
    provider_refusal,
)
from golem_tasks.providers.yagna.market.status import OUTBOUND, PROVIDER_REFUSED

from .golem_helpers import FAST, make_provider
from .yagna_samples import IMAGE_HASH, IMAGE_URL, offer_properties

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
IMAGE = dict(image_hash=IMAGE_HASH, image_url=IMAGE_URL)


def decoded(manifest: Manifest) -> Dict[str, Any]:
    return json.loads(base64.b64decode(manifest.encoded))


# -- the manifest --------------------------------------------------------------------------

def test_outbound_urls_make_a_manifest_of_the_image_and_the_urls():
    manifest = Manifest.build(outbound=["https://pypi.org", "http://example.org:8080/data"], now=NOW, **IMAGE)
    data = decoded(manifest)
    assert data["version"] == "0.1.0"
    assert data["createdAt"] == "2026-12-01T12:00:00.000000Z" and data["expiresAt"].startswith("2027-12-01")
    assert data["payload"] == [{"platform": {"arch": "x86_64", "os": "linux"}, "urls": [IMAGE_URL],
                                "hash": f"sha3:{IMAGE_HASH}"}]
    out = data["compManifest"]["net"]["inet"]["out"]
    assert out == {"protocols": ["http", "https"], "urls": ["https://pypi.org", "http://example.org:8080/data"]}
    assert "script" not in data["compManifest"]  # every command allowed
    assert manifest.properties() == {PAYLOAD: manifest.encoded}
    assert manifest.constraints() == ("(golem.runtime.capabilities=inet)",
                                      "(golem.runtime.capabilities=manifest-support)")


def test_no_outbound_no_manifest():
    assert Manifest.build(outbound=None, **IMAGE) is None
    assert Manifest.build(outbound=[], **IMAGE) is None


def test_script_commands_are_optional_regular_expressions():
    manifest = Manifest.build(outbound=["https://pypi.org"], commands=["run .*pip.*"], **IMAGE)
    assert decoded(manifest)["compManifest"]["script"] == {"commands": ["run .*pip.*"], "match": "regex"}


def test_a_signed_manifest_is_sent_as_given_with_its_signature_and_certificate():
    text = json.dumps({"version": "0.1.0", "createdAt": "2022-07-26T12:51:00.000000Z",
                       "expiresAt": "2100-01-01T00:01:00.000000Z", "payload": [],
                       "compManifest": {"version": "0.1.0",
                                        "net": {"inet": {"out": {"urls": ["https://api.example.org"]}}}}})
    encoded = base64.b64encode(text.encode()).decode()
    manifest = Manifest.build(manifest=encoded, manifest_sig=b"\x01\x02signature", manifest_sig_algorithm="sha256",
                              manifest_cert="Q0VSVA==", **IMAGE)
    props = manifest.properties()
    assert props[PAYLOAD] == encoded  # exactly the text the signature covers
    assert base64.b64decode(props[PAYLOAD_SIG]) == b"\x01\x02signature"
    assert props[PAYLOAD_SIG_ALGORITHM] == "sha256" and props[PAYLOAD_CERT] == "Q0VSVA=="
    assert manifest.urls == ("https://api.example.org",)


def test_a_node_descriptor_is_sent_and_asks_for_inet_only():
    descriptor = {"nodeDescriptor": {"nodeId": "0x" + "1" * 40}, "signature": {"algorithm": "sha256"}}
    manifest = Manifest.build(outbound=["https://pypi.org"], node_descriptor=descriptor, **IMAGE)
    assert manifest.properties()[NODE_DESCRIPTOR] == descriptor
    assert manifest.constraints() == ("(golem.runtime.capabilities=inet)",)


@pytest.mark.parametrize("options, words", [
    (dict(outbound=["pypi.org"]), "outbound lists 'pypi.org'"),
    (dict(outbound=["ftp://files.example.org"]), "not an http, https, ws or wss URL"),
    (dict(outbound=["https://pypi.org"], manifest_sig="c2ln", manifest_sig_algorithm="sha256",
          manifest_cert="Y2VydA=="), "pass that signed manifest as manifest="),
    (dict(manifest={"compManifest": {}}, manifest_sig="c2ln"), "go together"),
    (dict(outbound=["https://a.org"], manifest={"compManifest": {"net": {"inet": {"out": {"urls": ["https://b.org"]}}}}}),
     "differ"),
    (dict(manifest="not json, not base64!"), "manifest="),
    (dict(node_descriptor={"a": 1}), "give outbound="),
    (dict(manifest={"compManifest": {}}, commands=["run .*"]), "compManifest.script"),
])
def test_bad_manifest_options_are_refused_with_the_fix(options, words):
    with pytest.raises(ConfigurationError, match=words.replace("(", r"\(").replace("?", r"\?")):
        Manifest.build(**options, **IMAGE)


def test_golem_provider_refuses_bad_outbound_options_before_asking_the_daemon(daemon):
    with pytest.raises(ConfigurationError, match="outbound lists 'pypi.org'"):
        make_provider(outbound=["pypi.org"])
    with pytest.raises(ConfigurationError, match="pass that signed manifest as manifest="):
        make_provider(outbound=["https://pypi.org"], manifest_sig="c2ln", manifest_sig_algorithm="sha256",
                      manifest_cert="Y2VydA==")
    assert not daemon.calls  # nothing asked, nothing reserved


# -- what providers answer ------------------------------------------------------------------

def test_a_providers_outbound_rejection_is_counted_as_outbound():
    said = ("Outbound rejected because: Everyone rule didn't match whitelist ; Audited-Payload rule requires "
            "manifest signature ; Partner rule requires node descriptor ; ")
    refusal = provider_refusal(said)
    assert refusal.category == OUTBOUND and refusal.reason.startswith(UNTRUSTED) and said in refusal.reason
    assert provider_refusal("No capacity available").category == PROVIDER_REFUSED


def test_localnet_providers_answer_like_ya_provider():
    manifest = Manifest.build(outbound=["https://pypi.org/simple", "http://files.example.org"], **IMAGE)
    demand = {**manifest.properties(), "golem.com.payment.chosen-platform": "erc20-hoodi-tglm",
              "golem.srv.comp.expiration": 0}
    default = Negotiator()._check(demand, now=0)
    assert default.startswith("Outbound rejected because: Everyone rule didn't match whitelist")
    assert "not whitelisted: pypi.org, files.example.org" in default
    assert "Audited-Payload rule requires manifest signature ; Partner rule requires node descriptor" in default
    partly = Negotiator(outbound_whitelist=["pypi.org"])._check(demand, now=0)
    assert "not whitelisted: files.example.org" in partly
    import re
    trusted = Negotiator(outbound_whitelist=["PyPI.org", re.compile(r"(^|\.)example\.org$")])
    assert "Outbound" not in (trusted._check(demand, now=0) or "")
    assert "Outbound" not in (Negotiator(outbound_rule="everyone")._check(demand, now=0) or "")
    assert "Everyone rule is disabled" in Negotiator(outbound_rule="none")._check(demand, now=0)
    flattened = {**demand, NODE_DESCRIPTOR + ".nodeDescriptor.nodeId": "0x01"}  # as the daemon passes it on
    assert "Partner rule: no certificate is trusted on localnet" in Negotiator()._check(flattened, now=0)
    without = {k: v for k, v in demand.items() if k != PAYLOAD}
    assert "Outbound" not in (Negotiator()._check(without, now=0) or "")


# -- on the fake daemon ----------------------------------------------------------------------

def subscribed_demands(daemon) -> List[Dict[str, Any]]:
    """Record every demand the daemon is asked to subscribe."""
    bodies: List[Dict[str, Any]] = []
    subscribe = daemon._subscribe

    def recording(body, **rest):
        bodies.append(body)
        return subscribe(body=body, **rest)
    daemon.routes = [(m, p, r, recording if r == "/market-api/v1/demands" and m == "POST" else h)
                     for m, p, r, h in daemon.routes]
    return bodies


def test_the_demand_carries_the_manifest_and_asks_for_its_capabilities(daemon):
    bodies = subscribed_demands(daemon)
    with make_provider(outbound=["https://pypi.org"]) as provider:
        provider.start()
    [demand] = bodies
    data = json.loads(base64.b64decode(demand["properties"][PAYLOAD]))
    assert data["compManifest"]["net"]["inet"]["out"]["urls"] == ["https://pypi.org"]
    assert "(golem.runtime.capabilities=inet)(golem.runtime.capabilities=manifest-support)" in demand["constraints"]
    assert demand["properties"]["golem.srv.comp.task_package"].startswith(f"hash:sha3:{IMAGE_HASH}:")


def test_the_scan_names_offers_without_the_capability(daemon):
    for number, provider_node in enumerate(daemon.nodes.values()):
        provider_node.properties = dict(offer_properties(), **{
            "golem.runtime.capabilities": ["vpn"] if number else ["inet", "manifest-support", "vpn"]})
    with make_provider(outbound=["https://pypi.org"]) as provider:
        scan = provider.scan(seconds=3)
    assert [o.provider_name for o in scan.matching] == ["provider-1"]
    [lacking] = scan.filtered
    assert lacking.refusal.category == OUTBOUND
    assert "lacks runtime capabilities inet, manifest-support" in lacking.refusal.reason
    assert "outbound: the offer lacks" in scan.format()


def test_providers_that_do_not_trust_the_urls_are_named_in_the_startup_feedback(daemon):
    said = "Outbound rejected because: Everyone rule didn't match whitelist ; "
    for provider_node in daemon.nodes.values():
        provider_node.reject_counter = said
    statuses: List[MarketStatus] = []
    both = threading.Event()

    def watch(event):
        if isinstance(event, MarketStatus):
            statuses.append(event)
            if dict(event.rejected).get(OUTBOUND) == 2:
                both.set()
    # startup_timeout: long enough for both rejections to arrive on a busy machine (1 s was not)
    provider = make_provider(outbound=["https://pypi.org"], startup_timeout=5, events=watch,
                             timeouts=attrs.evolve(FAST, negotiation=60))
    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    assert both.is_set(), statuses  # the feedback counted both providers' refusals
    message = str(caught.value)
    # (the providers' refusals stand across renewed demands, though a counter-proposal that fails
    # on one may replace a refusal with its own: the reason is what matters here)
    assert re.search(r"\d+ rejected by outbound", message)
    assert UNTRUSTED in message and "whitelist" in message and "manifest_sig=" in message


def test_localnet_up_plays_the_outbound_rules_asked_for():
    from golem_tasks.localnet import cli
    args = cli.parser().parse_args(["up", "--providers", "2", "--outbound-whitelist", "pypi.org",
                                    "--outbound-whitelist", "files.pythonhosted.org"])
    negotiators = cli._outbound_negotiators(args)
    assert [n.outbound_whitelist for n in negotiators] == [("pypi.org", "files.pythonhosted.org")] * 2
    assert {n.outbound_rule for n in negotiators} == {"whitelist"}
    assert cli._outbound_negotiators(cli.parser().parse_args(["up"])) is None  # the defaults


def test_localnet_exe_units_check_commands_against_the_manifest_script():
    from golem_tasks.localnet.exeunit.script_rules import violation
    run = {"run": {"entry_point": "/bin/sh", "args": ["-c", "pip install requests"]}}
    other = {"run": {"entry_point": "/bin/rm", "args": ["-rf", "/golem"]}}
    fetch = {"transfer": {"from": "https://pypi.org/x", "to": "container:/golem/x"}}
    regex = {"commands": ["run .*pip install.*", "transfer https://pypi\\.org/.*"], "match": "regex"}
    assert violation(None, [other]) is None  # no script: any command
    assert violation(regex, [{"deploy": {}}, {"start": {}}, run, fetch]) is None
    assert violation(regex, [run, other]) == ("script validation error: no matching manifest entry found for "
                                              "'run /bin/rm -rf /golem'")
    strict = {"commands": ["run /bin/sh -c pip install requests"]}  # strict is the default match
    assert violation(strict, [run]) is None
    assert "transfer https://pypi.org/x" in violation(strict, [fetch])
    as_json = {"commands": [json.dumps({"run": {"args": "/bin/rm .*", "match": "regex"}})], "match": "strict"}
    assert violation(as_json, [other]) is None and violation(as_json, [run]) is not None
