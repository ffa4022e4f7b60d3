"""Where finished tasks go: one small class per destination kind behind one interface.

``parse_destination`` validates a URI (at cold start, through the configuration); ``build_destination``
imports the kind's module only when a URI of that kind is configured, so a deployment never loads an
SDK it does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..model import Delivery, Observation


class Destination(Protocol):
    """Delivers one observed task, create-only: a repeat is ``already_present``, never a second copy."""

    name: str

    def deliver(self, observation: Observation) -> Delivery:
        """Store or announce the task; raise a RelayError (DestinationFailure) when it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    scheme: str
    uri: str


# scheme -> "module:factory", imported on first use.
_FACTORIES: dict[str, str] = {
    "file": "aitask_relay.destinations.file:FileDestination.from_uri",
}


def parse_destination(uri: str) -> DestinationSpec:
    """Check one RELAY_DESTINATIONS entry; the error names the variable and the entry."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _FACTORIES:
        known = ", ".join(f"{s}://" for s in _FACTORIES)
        raise ConfigurationError(f"RELAY_DESTINATIONS entry {uri!r}: unknown scheme (supported: {known})")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigurationError(f"RELAY_DESTINATIONS entry {uri!r}: a file destination is file:///absolute/dir")
        if parts.query or parts.fragment:
            raise ConfigurationError(f"RELAY_DESTINATIONS entry {uri!r}: a file destination takes no query")
    return DestinationSpec(scheme=scheme, uri=uri)


def build_destination(uri: str) -> Destination:
    """Build the destination for a URI, importing its module lazily."""
    spec = parse_destination(uri)
    module_name, _, attr = _FACTORIES[spec.scheme].partition(":")
    target: object = import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target(spec.uri)  # type: ignore[operator,no-any-return]
