"""Every ERP connector implements each capability it declares, method for method."""
import inspect

import pytest

from integrations.connectors.base import (
    CAPABILITY_PROTOCOLS,
    DISPATCHES,
    ERP_CAPABILITIES,
    OPTIONAL_ERP_CAPABILITIES,
    UnsupportedCapability,
    require,
    supports,
)
from integrations.connectors.erp import RestErpClient
from integrations.connectors.prima import PrimaClient


@pytest.mark.parametrize("client_class", [RestErpClient, PrimaClient])
def test_a_connector_implements_every_method_of_each_capability_it_declares(client_class):
    assert client_class.capabilities
    for capability in client_class.capabilities:
        protocol = CAPABILITY_PROTOCOLS[capability]
        for name, member in inspect.getmembers(protocol, inspect.isfunction):
            if name.startswith("_"):
                continue
            implemented = getattr(client_class, name, None)
            assert callable(implemented), f"{client_class.__name__} lacks {name} ({capability})"
            wanted = set(inspect.signature(member).parameters) - {"self"}
            assert wanted <= set(inspect.signature(implemented).parameters), (client_class.__name__, name)


class _SalesOnlyErp:
    """A connector that declares no capability."""

    capabilities = frozenset()


def test_a_capability_not_declared_is_refused_clearly():
    client = _SalesOnlyErp()
    assert not supports(client, DISPATCHES)
    with pytest.raises(UnsupportedCapability, match="_SalesOnlyErp does not support dispatches"):
        require(client, DISPATCHES)


@pytest.mark.parametrize("client_class", [RestErpClient, PrimaClient])
def test_both_erp_connectors_declare_every_capability(client_class):
    assert frozenset(ERP_CAPABILITIES) <= client_class.capabilities
    assert client_class.capabilities <= frozenset(ERP_CAPABILITIES + OPTIONAL_ERP_CAPABILITIES)
