"""The access scopes a Shopify connection holds against what its enabled flows need, said in plain
words ("read_all_orders is missing: orders older than 60 days cannot be imported")."""
from __future__ import annotations

from dataclasses import dataclass

from integrations.connectors import connector_for
from integrations.connectors.shopify.app import granted_scopes

from .requirements import ScopeNeed, enabled_flows


@dataclass(frozen=True)
class MissingScope:
    scope: str
    flow: str
    required: bool
    message: str


def implied(scopes) -> frozenset[str]:
    """What a set of scopes allows: a write_ scope grants its read_ scope too."""
    scopes = set(scopes)
    return frozenset(scopes | {"read_" + s.removeprefix("write_") for s in scopes if s.startswith("write_")})


def missing_scopes(granted, flows) -> list[MissingScope]:
    have = implied(granted)
    missing: dict[str, MissingScope] = {}
    for flow in flows:
        for need in flow.scopes:
            if need.scope not in have and need.scope not in missing:
                missing[need.scope] = _missing(need, flow.flow)
    return list(missing.values())


def _missing(need: ScopeNeed, flow: str) -> MissingScope:
    return MissingScope(need.scope, flow, need.required, f"{need.scope} is missing: {need.without}")


def shopify_scopes_check(connection, client=None) -> tuple[frozenset[str], list[MissingScope]]:
    """(the scopes Shopify says the installation holds, what the enabled flows miss of them)."""
    client = client or connector_for(connection)
    granted = granted_scopes(client)
    return granted, missing_scopes(granted, enabled_flows(connection))
