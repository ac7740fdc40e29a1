"""Exception types of the catalogue flow (the item master to the storefronts): each declared once with
its team, runbook and retry. An incomplete item's exception lists exactly what it still lacks, is
updated when that changes and resolves itself (the item is published) once the ERP completes it."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY_ITEM = "integrations.flows.catalogue.retry_catalogue_exception"

ITEM_INCOMPLETE = registry.register(ExceptionType(
    code="catalogue_item_incomplete", team=Team.ECOMMERCE, severity=Severity.MEDIUM, system="erp",
    title="{code} is held back from {storefront}: {missing}",
    runbook=(
        "What happened: a new or changed ERP item lacks what the storefront needs before it may go live (the "
        "list on this exception: cost, lead time, tax code, depot, a price in the storefront's currency, "
        "required attributes). It is not published; what is live stays as it was.\n"
        "Check: the item in the ERP (item master and price lists); the storefront's required attributes in "
        "its connection settings (catalogue_required_attributes).\n"
        "Fix: complete the item in the ERP. The next item master pull sees the change, this exception "
        "resolves itself and the item is published (or waits in the publish queue where release is manual). "
        "Retry pulls and checks again now.\n"
        "Escalate: the merchandising lead who owns the item master."
    ),
    retry_handler=RETRY_ITEM, sla=timedelta(days=3),
))
PUBLISH_FAILED = registry.register(ExceptionType(
    code="catalogue_publish_failed", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Product {key} could not be published to {storefront}",
    runbook=(
        "What happened: the storefront refused the product (the error says why: an invalid attribute, a "
        "missing tax category or product type, a handle taken) or kept failing after retries.\n"
        "Check: the error; the product in the storefront admin; the item in the ERP.\n"
        "Fix: correct the item in the ERP or the storefront's settings, then retry: publishing creates or "
        "updates the product by its key, so nothing is doubled.\n"
        "Escalate: the e-commerce platform owner."
    ),
    retry_handler=RETRY_ITEM, sla=timedelta(hours=8),
))
GROUPING_CONFLICT = registry.register(ExceptionType(
    code="catalogue_grouping_conflict", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Product {key} is grouped otherwise on {storefront}",
    runbook=(
        "What happened: the storefront already sells this product's SKUs, but not as one product holding "
        "only them: they are spread over several storefront products, or one holds SKUs the ERP puts in "
        "another product (the message names each storefront product and its SKUs). Ledgerline adopts an "
        "existing product only when it matches; it wrote nothing, so nothing is sold twice.\n"
        "Check: the storefront products named; the product key of these items in the ERP.\n"
        "Fix: either give the items in the ERP the product key matching the storefront's grouping, or "
        "move the SKUs in the storefront so one product holds exactly this product's SKUs (or remove the "
        "old product). Then retry: the product is adopted or created and this resolves itself.\n"
        "Escalate: the e-commerce platform owner and the merchandising lead."
    ),
    retry_handler=RETRY_ITEM, sla=timedelta(days=2),
))
PULL_FAILED = registry.register(ExceptionType(
    code="catalogue_pull_failed", team=Team.OPS, severity=Severity.HIGH, system="erp",
    title="The item master of {erp} could not be read",
    runbook=(
        "What happened: reading the items changed in the ERP failed (the ERP down, a revoked key, an answer "
        "Ledgerline could not read). Items already read are kept; the next pull continues from the same "
        "cursor, so nothing is missed.\n"
        "Check: the error; the ERP connection's health under Connections.\n"
        "Fix: repair the connection, then retry (it pulls again now and resolves this when it succeeds).\n"
        "Escalate: the integration engineer on call."
    ),
    retry_handler=RETRY_ITEM, sla=timedelta(hours=4),
))
