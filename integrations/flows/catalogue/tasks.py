"""django-q2 entry points of the catalogue flow (scheduled in config/schedules.py)."""
from __future__ import annotations

import logging

log = logging.getLogger("ledgerline.catalogue")


def catalogue_sync_all() -> dict:
    """The scheduled round: every ERP's item master pulled and gated, every catalogue storefront published
    (runs under way resumed, bulk jobs asked by their saved handle)."""
    from . import catalogue_sync

    return catalogue_sync(wait=30.0)


def publish_storefront(connection_id: int) -> str:
    """Publish what is pending to one storefront now (after a release from the publish queue)."""
    from integrations.models import Connection

    from .publishing import publish

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return "no such connection"
    run = publish(connection, wait=30.0)
    return "nothing to publish" if run is None else f"run {run.pk}: {run.state} {run.done}/{run.total}"
