"""A local provider's outbound rules: which manifests it accepts, as ya-provider decides.

ya-provider (``agent/provider/src/rules/outbound.rs``) accepts a demand whose computation
payload manifest (``golem.srv.comp.payload``) asks for outbound URLs when any of its
rules does: *everyone* (mode ``whitelist``: every URL's host is in the domain whitelist;
``all``: any URL; ``none``), *audited-payload* (a manifest signed by a trusted
certificate) or *partner* (a signed node descriptor). Otherwise it rejects the proposal
with ``"Outbound rejected because: <each rule's reason> ; ..."``.

Played here: the everyone rule with its whitelist (exact domains, or compiled regular
expressions searched in the host, like ``ya-provider whitelist add -t regex``) and its
modes. Not played: certificates. A signature or node descriptor is read but trusted by no
localnet provider (it has no keystore), so those rules always give their reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Iterable, Mapping, Optional, Pattern, Tuple, Union

from ...errors import ConfigurationError
from ...providers.outbound import endpoint

PAYLOAD = "golem.srv.comp.payload"
PAYLOAD_SIG = "golem.srv.comp.payload.sig"
NODE_DESCRIPTOR = "golem.!exp.gap-31.v0.node.descriptor"
#: The capabilities of a runtime that serves manifests (ya-runtime-vm advertises them).
CAPABILITIES = ("inet", "manifest-support")

#: ya-provider's modes of the everyone rule; "everyone" is taken as "all".
RULES = ("whitelist", "all", "none")

DomainPattern = Union[str, Pattern[str]]


def check_rule(value: str) -> str:
    """``outbound_rule=``, checked."""
    if value == "everyone":
        return "all"
    if value not in RULES:
        raise ConfigurationError(f"outbound_rule must be 'whitelist', 'all' (or 'everyone') or 'none', got {value!r}")
    return value


def check_whitelist(values: Iterable[DomainPattern]) -> Tuple[DomainPattern, ...]:
    """``outbound_whitelist=``: domains (exact, any case) or compiled regular expressions."""
    if isinstance(values, (str, re.Pattern)):
        values = (values,)
    found = tuple(values)
    for value in found:
        if not isinstance(value, (str, re.Pattern)) or (isinstance(value, str) and ("/" in value or not value)):
            raise ConfigurationError(f"outbound_whitelist lists domains ('pypi.org') or re.compile(...) patterns, "
                                     f"not URLs; got {value!r}")
    return found


def manifest_of(demand: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The manifest a demand carries, decoded; None when it carries none.

    Raises:
        ValueError: it is not base64 of a JSON object.
    """
    encoded = demand.get(PAYLOAD)
    if encoded is None:
        return None
    try:
        data = json.loads(base64.b64decode(str(encoded), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("invalid manifest: not a JSON object")
    return data


def _out(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    return (((manifest.get("compManifest") or {}).get("net") or {}).get("inet") or {}).get("out") or {}


def requested_urls(manifest: Mapping[str, Any]) -> Tuple[str, ...]:
    """The URLs a manifest asks to reach."""
    urls = _out(manifest).get("urls") or ()
    return tuple(str(url) for url in urls) if isinstance(urls, (list, tuple)) else ()


def sandbox_access(demand: Mapping[str, Any]) -> Tuple[Tuple[str, ...], bool]:
    """What an approved demand's exe-unit lets commands reach: (URLs, unrestricted)."""
    try:
        manifest = manifest_of(demand)
    except ValueError:
        return (), False
    if manifest is None:
        return (), False
    return requested_urls(manifest), bool((_out(manifest).get("unrestricted") or {}).get("urls"))


def script_of(demand: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The ``compManifest.script`` of an approved demand's manifest (None: any command)."""
    try:
        manifest = manifest_of(demand)
    except ValueError:
        return None
    script = (manifest or {}).get("compManifest", {}).get("script") if manifest else None
    return script if isinstance(script, dict) else None


def rejection(demand: Mapping[str, Any], *, rule: str, whitelist: Tuple[DomainPattern, ...]) -> Optional[str]:
    """Why the provider rejects the demand's manifest (ya-provider's words), or None."""
    try:
        manifest = manifest_of(demand)
    except ValueError as exc:
        return str(exc)
    if manifest is None:
        return None
    unrestricted = bool((_out(manifest).get("unrestricted") or {}).get("urls"))
    urls = requested_urls(manifest)
    if not urls and not unrestricted:
        return None  # no outbound access asked for
    if rule == "none":
        everyone = "Everyone rule is disabled"
    elif rule == "all":
        return None
    else:
        outside = [] if unrestricted else _not_whitelisted(urls, whitelist)
        if not unrestricted and not outside:
            return None
        everyone = "Everyone rule didn't match whitelist" + (f" (not whitelisted: {', '.join(outside)})"
                                                             if outside else " (unrestricted access asked)")
    audited = ("Audited-Payload rule: no certificate is trusted on localnet" if PAYLOAD_SIG in demand
               else "Audited-Payload rule requires manifest signature")
    # The daemon flattens a descriptor (a JSON object) into keys under its name.
    described = any(key == NODE_DESCRIPTOR or key.startswith(NODE_DESCRIPTOR + ".") for key in demand)
    partner = ("Partner rule: no certificate is trusted on localnet" if described
               else "Partner rule requires node descriptor")
    return f"Outbound rejected because: {everyone} ; {audited} ; {partner} ; "


def _not_whitelisted(urls: Iterable[str], whitelist: Tuple[DomainPattern, ...]) -> list:
    outside = []
    for url in urls:
        try:
            host = endpoint(url)[0]
        except ConfigurationError:
            outside.append(url)
            continue
        if not any(host == entry.lower() if isinstance(entry, str) else entry.search(host) for entry in whitelist):
            outside.append(host)
    return outside
