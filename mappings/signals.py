"""Cache invalidation only: a changed SKU, kit, depot or location mapping makes the order flow read
the ERP's items and depots afresh (integrations.flows.orders.common.erp_facts_changed)."""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import DepotMapping, KitComponent, LocationMapping, SkuMapping

_MAPPINGS = (SkuMapping, KitComponent, DepotMapping, LocationMapping)


def _mapping_changed(sender, **kwargs) -> None:
    from integrations.flows.orders.common import erp_facts_changed

    erp_facts_changed()


for _model in _MAPPINGS:
    receiver(post_save, sender=_model, dispatch_uid=f"erp-facts-save-{_model.__name__}")(_mapping_changed)
    receiver(post_delete, sender=_model, dispatch_uid=f"erp-facts-delete-{_model.__name__}")(_mapping_changed)
