"""Django admin for the mapping tables (with simple-history's history view); the HTMX screens are the main UI."""
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import CarrierMapping, DepotMapping, KitComponent, LocationMapping, MappingProposal, SkuMapping, TaxCodeMapping


class KitComponentInline(admin.TabularInline):
    model = KitComponent
    extra = 0


@admin.register(SkuMapping)
class SkuMappingAdmin(SimpleHistoryAdmin):
    list_display = ("storefront_sku", "erp_item_code", "connection", "active")
    list_filter = ("connection", "active")
    search_fields = ("storefront_sku", "erp_item_code")
    inlines = [KitComponentInline]


@admin.register(LocationMapping)
class LocationMappingAdmin(SimpleHistoryAdmin):
    list_display = ("storefront_location", "erp_warehouse", "connection", "buffer_units", "buffer_percent", "active")
    list_filter = ("connection", "active")
    search_fields = ("storefront_location", "erp_warehouse")


@admin.register(DepotMapping)
class DepotMappingAdmin(SimpleHistoryAdmin):
    list_display = ("connection", "country", "storefront_location", "depot_code", "active")
    list_filter = ("connection", "active")


@admin.register(TaxCodeMapping)
class TaxCodeMappingAdmin(SimpleHistoryAdmin):
    list_display = ("connection", "tax_category", "rate", "country", "erp_tax_code")
    list_filter = ("connection", "country")


@admin.register(CarrierMapping)
class CarrierMappingAdmin(SimpleHistoryAdmin):
    list_display = ("connection", "erp_carrier", "tracking_company", "active")
    list_filter = ("connection", "active")
    search_fields = ("erp_carrier", "tracking_company")


@admin.register(MappingProposal)
class MappingProposalAdmin(SimpleHistoryAdmin):
    """Read-only here: proposals are decided under Mappings → Proposals, where approving adds the row."""

    list_display = ("key", "table", "status", "proposed_by", "proposed_at", "decided_by", "decided_at")
    list_filter = ("status", "table")
    search_fields = ("key",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
