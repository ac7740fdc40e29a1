"""Exception types of the inventory flow, and how it raises them (keyed per connection)."""
from __future__ import annotations

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team


UNKNOWN_SKU = registry.register(ExceptionType(
    code="inventory_unknown_sku", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Stock for SKU {sku} cannot be pushed to {storefront}",
    runbook=(
        "What happened: a stock push found a SKU that one side does not know: the storefront has no "
        "variant/inventory item with it, or the ERP has no stock record for the item it maps to. Its "
        "storefront quantity was NOT changed, so it may be offering stock the warehouse cannot ship.\n"
        "Check: the SKU on the storefront, Mappings → SKUs, and the item in the ERP.\n"
        "Fix: correct the SKU or add the mapping (or set the storefront quantity to 0 by hand), then retry. "
        "Not an admin? Use \"Propose a mapping\" on this exception (the SKU is filled in; give the ERP item): "
        "an admin approves it under Mappings → Proposals with one click, and this exception is retried then.\n"
        "Escalate: e-commerce catalogue owner."
    ),
    retry_handler="integrations.flows.inventory.inventory_exception_retry",
))


UNMAPPED_LOCATION = registry.register(ExceptionType(
    code="inventory_unmapped_location", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Storefront location {location} has no ERP warehouse",
    runbook=(
        "What happened: a storefront location / supply channel has no active location mapping, or a "
        "mapping names a location the storefront does not have. Stock there is not kept in line with "
        "the ERP.\n"
        "Check: Mappings → Locations for the storefront and the storefront's list of locations.\n"
        "Fix: add or correct the mapping (or deactivate the storefront location), then retry. Not an admin? "
        "Use \"Propose a mapping\" on this exception (the location is filled in; give the ERP warehouse): an "
        "admin approves it under Mappings → Proposals with one click, and this exception is retried then.\n"
        "Escalate: warehouse operations lead."
    ),
    retry_handler="integrations.flows.inventory.inventory_exception_retry",
))



def inventory_exception_raise(exc_type: ExceptionType, *, connection, key: str, message: str, context: dict, sku: str = "",
           retry_args: dict | None = None):
    from exceptions_queue.services import exception_raise

    return exception_raise(exc_type=exc_type, key=f"{connection.code}:{key}", fingerprint=key, message=message,
                           context={"storefront": connection.name, **context}, sku=sku,
                           retry_args={"connection": connection.code, **(retry_args or {})})
