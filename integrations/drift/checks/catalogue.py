"""Catalogue: ERP items no storefront sells and storefront SKUs with no ERP item, SKUs on two Shopify
products, variants missing fields the ERP needs, mappings pointing at depots or locations that are
gone. It runs the mapping health report (mappings/health.py) and keeps its exception types and keys,
so a gap the mapping health check raised before is the same exception."""
from __future__ import annotations

from exceptions_queue.registry import Team
from integrations.models import Connection, DriftRun

from ..registry import Finding, drift_check

CODE = "catalogue"


@drift_check(CODE, "Catalogue", Team.ECOMMERCE, "mappings", 60,
             "ERP items missing from the storefronts and the reverse, duplicate SKUs across Shopify products, "
             "variants missing fields the ERP needs, mappings to depots or locations that are gone.")
def catalogue(run: DriftRun) -> list[Finding]:
    from mappings.health import mappings_health

    from ..conf import drift_setting

    if drift_setting("skip_vendor_reads"):
        run.summary["note"] = "vendor reads skipped: the catalogue lives only in the ERP and the storefronts"
        run.keep_open.add("")  # nothing was looked at: nothing is closed
        return []
    report = mappings_health()
    connections = {c.code: c for c in Connection.objects.all()}
    findings = []
    types_seen = set()
    for f in report.findings:
        types_seen.add(f.exc_type.code)
        connection = connections.get(f.context.get("connection", ""))
        subject = ("sku", f.sku) if f.sku else (
            ("item", f.context["item"]) if f.context.get("item") and not f.context.get("sku") else ("mapping", f.key))
        findings.append(Finding(
            key=f"{f.exc_type.code}:{f.key}", exception_key=f.key, exception_type=f.exc_type.code,
            connection=connection, subject_type=subject[0], subject_id=subject[1], sku=f.sku,
            group=f.key, message=f.message, context=f.context, detail=f.context))
    # A kind of gap this run could not check completely (a vendor down) keeps its findings open.
    from mappings.health import HEALTH_TYPES, VARIANT_INCOMPLETE

    for exc_type in (*HEALTH_TYPES, VARIANT_INCOMPLETE):
        if exc_type.code not in report.checked:
            run.keep_open.add(f"{exc_type.code}:")
    run.summary.update(errors=report.errors, notes=report.notes, checked=sorted(report.checked),
                       by_type={code: sum(1 for f in report.findings if f.exc_type.code == code) for code in types_seen})
    return findings
