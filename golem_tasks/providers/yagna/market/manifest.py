"""Outbound internet on Golem: the computation payload manifest a demand carries.

Providers let a VM reach the internet only for the URLs of a manifest (GAP-4/GAP-5) that
the demand sends base64-encoded in ``golem.srv.comp.payload``, and only when one of their
outbound rules accepts it (ya-provider's ``rules.json``):

* **everyone** (``whitelist`` by default): every URL's host is in the provider's domain
  whitelist (``ya-provider whitelist add``);
* **audited-payload**: the manifest is signed (``.sig``, ``.sig.algorithm``) by a
  certificate (``.cert``) the provider trusts;
* **partner**: a signed node descriptor (``golem.!exp.gap-31.v0.node.descriptor``)
  certifies the requestor's node and the URLs it may reach.

A provider whose rules reject the manifest rejects the proposal with a reason like
``"Outbound rejected because: Everyone rule didn't match whitelist ; ..."``; its exe-unit
then lets the VM connect only to the hosts and ports of the manifest's URLs. The demand
also asks for the runtime capabilities that serve a manifest: ``inet`` (and
``manifest-support`` unless a node descriptor vouches for the requestor), as the SDKs do.

:class:`Manifest` builds the manifest from ``outbound=[...]`` and the image (or takes a
ready one, which a signature needs), and gives the demand properties and constraints.
:func:`provider_refusal` and :func:`offer_refusal` put the providers' answers into the
``outbound`` category of the startup feedback and the market scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import attrs

from ....errors import ConfigurationError
from ...outbound import check_outbound
from .status import OUTBOUND, PROVIDER_REFUSED, Refusal

PAYLOAD = "golem.srv.comp.payload"
PAYLOAD_SIG = "golem.srv.comp.payload.sig"
PAYLOAD_SIG_ALGORITHM = "golem.srv.comp.payload.sig.algorithm"
PAYLOAD_CERT = "golem.srv.comp.payload.cert"
NODE_DESCRIPTOR = "golem.!exp.gap-31.v0.node.descriptor"
CAPABILITIES = "golem.runtime.capabilities"
INET = "inet"
MANIFEST_SUPPORT = "manifest-support"

#: How the startup feedback says it, ahead of what the provider said.
UNTRUSTED = "outbound: provider does not trust the manifest's URLs"

#: Words of ya-provider's outbound rejections (``rules/outbound.rs``, ``negotiator/builtin/manifest.rs``).
_OUTBOUND_WORDS = ("outbound", "manifest", "whitelist", "audited-payload", "partner rule")

MANIFEST_VERSION = "0.1.0"
#: How long a generated manifest is valid: longer than any agreement.
MANIFEST_LIFETIME = timedelta(days=365)

ManifestArg = Union[str, bytes, Mapping[str, Any], None]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: Union[str, bytes, None], name: str) -> Optional[str]:
    """A signature or certificate as a base64 string (raw bytes are encoded)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value.decode("ascii")
            base64.b64decode(value, validate=True)
            return value.decode("ascii")
        except (UnicodeDecodeError, binascii.Error):
            return base64.b64encode(value).decode("ascii")
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be bytes or a base64 string, got {value!r}")
    return value


def _decode(manifest: ManifestArg) -> Tuple[Dict[str, Any], Optional[str]]:
    """A given manifest as JSON, and its base64 text when it came encoded (a signature
    covers that exact text, so it is sent unchanged)."""
    if isinstance(manifest, Mapping):
        return dict(manifest), None
    raw = manifest.encode() if isinstance(manifest, str) else manifest
    assert raw is not None
    stripped = raw.strip()
    encoded = None
    if not stripped.startswith(b"{"):
        try:
            encoded, stripped = stripped.decode("ascii"), base64.b64decode(stripped, validate=True)
        except (UnicodeDecodeError, binascii.Error) as exc:
            raise ConfigurationError("manifest= must be the manifest's JSON (text, bytes or a dict) or its base64 "
                                     f"encoding; it is neither ({exc})") from exc
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        raise ConfigurationError(f"manifest= is not JSON ({exc}): give the computation payload manifest") from exc
    if not isinstance(data, dict):
        raise ConfigurationError("manifest= must be a JSON object (a computation payload manifest)")
    return data, encoded


def manifest_urls(data: Mapping[str, Any]) -> Tuple[str, ...]:
    """``compManifest.net.inet.out.urls`` of a manifest (() when it asks for none)."""
    out = (((data.get("compManifest") or {}).get("net") or {}).get("inet") or {}).get("out") or {}
    urls = out.get("urls") or ()
    return tuple(str(url) for url in urls) if isinstance(urls, (list, tuple)) else ()


def unrestricted(data: Mapping[str, Any]) -> bool:
    """Whether a manifest asks for every URL (``"unrestricted": {"urls": true}``)."""
    out = (((data.get("compManifest") or {}).get("net") or {}).get("inet") or {}).get("out") or {}
    return bool((out.get("unrestricted") or {}).get("urls"))


@attrs.frozen(kw_only=True)
class Manifest:
    """A manifest and the demand properties that carry it.

    Build one with :meth:`build`. Attributes: ``data`` (the manifest as JSON), ``encoded``
    (its base64 text, as sent), ``urls`` (its outbound URLs), and the optional
    ``signature``, ``signature_algorithm``, ``certificate`` (base64) and
    ``node_descriptor`` (a JSON object).
    """

    data: Mapping[str, Any] = attrs.field(eq=False)
    encoded: str
    urls: Tuple[str, ...]
    signature: Optional[str] = None
    signature_algorithm: Optional[str] = None
    certificate: Optional[str] = None
    node_descriptor: Optional[Mapping[str, Any]] = attrs.field(default=None, eq=False)

    @classmethod
    def build(cls, *, outbound: Optional[Sequence[str]] = None, manifest: ManifestArg = None,
              image_hash: str, image_url: str, manifest_sig: Union[str, bytes, None] = None,
              manifest_sig_algorithm: Optional[str] = None, manifest_cert: Union[str, bytes, None] = None,
              node_descriptor: Optional[Mapping[str, Any]] = None, commands: Optional[Sequence[str]] = None,
              now: Optional[datetime] = None) -> Optional["Manifest"]:
        """The manifest for ``outbound`` URLs and the image, or the ``manifest`` given;
        None when neither asks for outbound access (and nothing else was given).

        Args:
            outbound: URLs the VM may reach (http, https, ws, wss).
            manifest: a ready manifest (JSON text, bytes, a dict, or base64): needed with a
                signature, which covers one exact text.
            image_hash, image_url: the image, for the manifest's ``payload``.
            manifest_sig, manifest_sig_algorithm, manifest_cert: the audited-payload scheme
                (all three, base64 or raw bytes).
            node_descriptor: a signed node descriptor (the partner scheme).
            commands: ExeScript commands the manifest allows (``compManifest.script``,
                regular expressions like ``"run .*"``); None allows every command.
            now: the manifest's ``createdAt`` (tests pass a fixed one).

        Raises:
            ConfigurationError: a bad URL, a signature without its manifest or its other
                parts, a node descriptor that is not a JSON object, or outbound= disagreeing
                with the manifest's URLs.
        """
        urls = check_outbound(outbound)
        signed = (manifest_sig, manifest_sig_algorithm, manifest_cert)
        if any(part is not None for part in signed):
            if not all(part is not None for part in signed):
                raise ConfigurationError("manifest_sig=, manifest_sig_algorithm= and manifest_cert= go together "
                                         "(the audited-payload scheme): give all three, or none")
            if manifest is None:
                raise ConfigurationError("manifest_sig= signs one exact manifest text: pass that signed manifest "
                                         "as manifest= (outbound= alone makes a new manifest, which no "
                                         "signature covers)")
        if node_descriptor is not None and not isinstance(node_descriptor, Mapping):
            raise ConfigurationError(f"node_descriptor= must be the signed node descriptor as a dict "
                                     f"(json.load of its file), got {type(node_descriptor).__name__}")
        if manifest is None and not urls:
            if node_descriptor is not None:
                raise ConfigurationError("node_descriptor= vouches for outbound access: give outbound=[...] "
                                         "(or manifest=) too")
            return None
        if manifest is not None:
            if commands is not None:
                raise ConfigurationError("manifest_commands= shapes the manifest made from outbound=; with "
                                         "manifest= put the commands in its compManifest.script instead")
            data, encoded = _decode(manifest)
            given = check_outbound(manifest_urls(data), "manifest='s compManifest.net.inet.out.urls")
            if urls and set(urls) != set(given):
                raise ConfigurationError(f"outbound={list(urls)} and the URLs of manifest= ({list(given)}) differ: "
                                         f"give one of them, or make them the same")
            urls = given
        else:
            data = cls._generate(urls, image_hash, image_url, commands, now or datetime.now(timezone.utc))
            encoded = None
        if encoded is None:
            encoded = base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")
        if manifest_sig_algorithm is not None and not isinstance(manifest_sig_algorithm, str):
            raise ConfigurationError(f"manifest_sig_algorithm= is a name like 'sha256', got {manifest_sig_algorithm!r}")
        return cls(data=data, encoded=encoded, urls=urls, signature=_text(manifest_sig, "manifest_sig"),
                   signature_algorithm=manifest_sig_algorithm, certificate=_text(manifest_cert, "manifest_cert"),
                   node_descriptor=None if node_descriptor is None else dict(node_descriptor))

    @classmethod
    def check(cls, **options: Any) -> Dict[str, Any]:
        """The options of :meth:`build` but the image, checked before anything else is
        done (no daemon asked, nothing reserved); returns them for :meth:`build`.

        Raises:
            ConfigurationError: as :meth:`build`.
        """
        cls.build(image_hash="0" * 56, image_url="http://image.invalid/", **options)  # thrown away
        return options

    @staticmethod
    def _generate(urls: Sequence[str], image_hash: str, image_url: str, commands: Optional[Sequence[str]],
                  now: datetime) -> Dict[str, Any]:
        schemes = sorted({url.split(":", 1)[0].lower() for url in urls})
        comp: Dict[str, Any] = {"version": MANIFEST_VERSION,
                                "net": {"inet": {"out": {"protocols": schemes, "urls": list(urls)}}}}
        if commands is not None:
            if isinstance(commands, str):
                raise ConfigurationError(f"commands= is a list of regular expressions, got the string {commands!r}")
            comp["script"] = {"commands": [str(c) for c in commands], "match": "regex"}
        return {
            "version": MANIFEST_VERSION,
            "createdAt": _iso(now),
            "expiresAt": _iso(now + MANIFEST_LIFETIME),
            "metadata": {"name": "golem_tasks job", "version": MANIFEST_VERSION},
            "payload": [{"platform": {"arch": "x86_64", "os": "linux"}, "urls": [image_url],
                         "hash": f"sha3:{image_hash}"}],
            "compManifest": comp,
        }

    @property
    def capabilities(self) -> Tuple[str, ...]:
        """What an offer must list in ``golem.runtime.capabilities`` to serve it."""
        return (INET,) if self.node_descriptor is not None else (INET, MANIFEST_SUPPORT)

    def properties(self) -> Dict[str, Any]:
        """The demand properties that carry the manifest (and its proofs, when given)."""
        props: Dict[str, Any] = {PAYLOAD: self.encoded}
        if self.signature is not None:
            props.update({PAYLOAD_SIG: self.signature, PAYLOAD_SIG_ALGORITHM: self.signature_algorithm,
                          PAYLOAD_CERT: self.certificate})
        if self.node_descriptor is not None:
            props[NODE_DESCRIPTOR] = dict(self.node_descriptor)
        return props

    def constraints(self) -> Tuple[str, ...]:
        return tuple(f"({CAPABILITIES}={name})" for name in self.capabilities)


def offer_refusal(properties: Mapping[str, Any], manifest: Optional[Manifest]) -> Optional[Refusal]:
    """Why an offer cannot serve the manifest (it lacks the capability), or None."""
    if manifest is None:
        return None
    have = properties.get(CAPABILITIES) or []
    missing = [name for name in manifest.capabilities if name not in have]
    if not missing:
        return None
    return Refusal(OUTBOUND, f"the offer lacks runtime capabilities {', '.join(missing)}, which a manifest "
                             f"(outbound=) needs", setting="outbound")


def provider_refusal(message: str) -> Refusal:
    """A provider's rejection of our proposal: ``outbound`` when it is about the manifest."""
    if any(word in message.lower() for word in _OUTBOUND_WORDS):
        return Refusal(OUTBOUND, f"{UNTRUSTED} (it said: {message})", setting="outbound", by_provider=True)
    return Refusal(PROVIDER_REFUSED, message, by_provider=True)

