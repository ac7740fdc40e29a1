"""The mapping tables described once: model, form, filters, columns, CSV key. Views, the CSV
import/export and the health panel read these specs instead of repeating themselves per table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.db.models import Model
from django.http import Http404

from . import filters, forms
from .models import CarrierMapping, DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _sku_csv(row: SkuMapping) -> dict[str, str]:
    return {
        "connection": row.connection.code,
        "storefront_sku": row.storefront_sku,
        "erp_item_code": row.erp_item_code,
        "components": forms.components_to_text(
            row.components.order_by("erp_item_code").values_list("erp_item_code", "quantity")
        ),
        "active": _yes(row.active),
        "note": row.note,
    }


def _location_csv(row: LocationMapping) -> dict[str, str]:
    return {
        "connection": row.connection.code,
        "storefront_location": row.storefront_location,
        "erp_warehouse": row.erp_warehouse,
        "sellable_states": ";".join(row.sellable_states or []),
        "buffer_units": str(row.buffer_units),
        "buffer_percent": str(row.buffer_percent),
        "active": _yes(row.active),
    }


def _depot_csv(row: DepotMapping) -> dict[str, str]:
    return {
        "connection": row.connection.code,
        "country": row.country,
        "storefront_location": row.storefront_location,
        "depot_code": row.depot_code,
        "active": _yes(row.active),
    }


def _tax_csv(row: TaxCodeMapping) -> dict[str, str]:
    return {
        "connection": row.connection.code,
        "tax_category": row.tax_category,
        "rate": format(row.rate.normalize(), "f"),
        "country": row.country,
        "erp_tax_code": row.erp_tax_code,
    }


def _carrier_csv(row: CarrierMapping) -> dict[str, str]:
    return {
        "connection": row.connection.code,
        "erp_carrier": row.erp_carrier,
        "tracking_company": row.tracking_company,
        "active": _yes(row.active),
    }


@dataclass(frozen=True)
class TableSpec:
    slug: str
    title: str
    noun: str  # "SKU mapping"
    model: type[Model]
    form: type[forms.MappingForm]
    filterset: type
    columns: tuple[str, ...]  # CSV columns, in order; also what the list shows
    key: tuple[str, ...]  # CSV columns that identify a row
    to_csv: Callable[[Model], dict[str, str]]
    defaults: dict[str, str]  # for a new row when the CSV leaves a column out
    list_fields: tuple[str, ...] = ()  # CSV columns shown as list columns (default: all)
    booleans: tuple[str, ...] = ("active",)
    multi: tuple[str, ...] = ()  # columns holding ";"-separated lists

    @property
    def shown(self) -> tuple[str, ...]:
        return self.list_fields or self.columns

    def headers(self) -> list[str]:
        return [self.form.base_fields[c].label or c.replace("_", " ").capitalize() for c in self.shown]

    def cells(self, row: Model) -> list[str]:
        """What the screens show: the CSV values, with booleans as "Yes" / "No"."""
        data = self.to_csv(row)
        return [({"true": "Yes", "false": "No"}.get(data[c], data[c]) if c in self.booleans else data[c]) for c in self.shown]

    def label(self, row: Model) -> str:
        data = self.to_csv(row)
        return " · ".join(data[k] or "*" for k in self.key)

    def queryset(self):
        qs = self.model.objects.select_related("connection")
        if self.model is SkuMapping:
            qs = qs.prefetch_related("components")
        return qs


TABLES: dict[str, TableSpec] = {
    spec.slug: spec
    for spec in (
        TableSpec(
            slug="skus",
            title="SKUs",
            noun="SKU mapping",
            model=SkuMapping,
            form=forms.SkuMappingForm,
            filterset=filters.SkuMappingFilter,
            columns=("connection", "storefront_sku", "erp_item_code", "components", "active", "note"),
            key=("connection", "storefront_sku"),
            to_csv=_sku_csv,
            defaults={"active": "true"},
        ),
        TableSpec(
            slug="locations",
            title="Locations / channels",
            noun="location mapping",
            model=LocationMapping,
            form=forms.LocationMappingForm,
            filterset=filters.LocationMappingFilter,
            columns=(
                "connection", "storefront_location", "erp_warehouse", "sellable_states",
                "buffer_units", "buffer_percent", "active",
            ),
            key=("connection", "storefront_location"),
            to_csv=_location_csv,
            defaults={"active": "true", "sellable_states": "available", "buffer_units": "0", "buffer_percent": "0"},
            multi=("sellable_states",),
        ),
        TableSpec(
            slug="depots",
            title="Depots",
            noun="depot mapping",
            model=DepotMapping,
            form=forms.DepotMappingForm,
            filterset=filters.DepotMappingFilter,
            columns=("connection", "country", "storefront_location", "depot_code", "active"),
            key=("connection", "country", "storefront_location"),
            to_csv=_depot_csv,
            defaults={"active": "true"},
        ),
        TableSpec(
            slug="taxcodes",
            title="Tax codes",
            noun="tax code mapping",
            model=TaxCodeMapping,
            form=forms.TaxCodeMappingForm,
            filterset=filters.TaxCodeMappingFilter,
            columns=("connection", "tax_category", "rate", "country", "erp_tax_code"),
            key=("connection", "tax_category", "rate", "country"),
            to_csv=_tax_csv,
            defaults={},
            booleans=(),
        ),
        TableSpec(
            slug="carriers",
            title="Carriers",
            noun="carrier mapping",
            model=CarrierMapping,
            form=forms.CarrierMappingForm,
            filterset=filters.CarrierMappingFilter,
            columns=("connection", "erp_carrier", "tracking_company", "active"),
            key=("connection", "erp_carrier"),
            to_csv=_carrier_csv,
            defaults={"active": "true"},
        ),
    )
}


def get_table(slug: str) -> TableSpec:
    try:
        return TABLES[slug]
    except KeyError:
        raise Http404(f"no mapping table {slug!r}") from None


def spec_for(row: Model) -> TableSpec:
    return next(s for s in TABLES.values() if isinstance(row, s.model))
