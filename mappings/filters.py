"""List filters (django-filter) for the four mapping tables: a search box plus a few choices."""
import django_filters
from django import forms
from django.db.models import Q

from integrations.models import Connection

from .models import CarrierMapping, DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping


def _yes_no(label: str) -> django_filters.BooleanFilter:
    """A Yes / No / Any choice (django-filter's default says "Unknown" for any)."""
    return django_filters.BooleanFilter(
        label=label, widget=forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])
    )


class _MappingFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.storefronts(), to_field_name="code", label="Storefront"
    )
    search_fields: tuple[str, ...] = ()

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = Q()
        for f in self.search_fields:
            query |= Q(**{f"{f}__icontains": value})
        return queryset.filter(query)


class SkuMappingFilter(_MappingFilter):
    search_fields = ("storefront_sku", "erp_item_code", "note", "components__erp_item_code")
    active = _yes_no("Active")
    kit = django_filters.BooleanFilter(
        method="filter_kit", label="Kit", widget=forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])
    )

    class Meta:
        model = SkuMapping
        fields = ["q", "connection", "active", "kit"]

    def filter_kit(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(components__isnull=not value).distinct()

    def search(self, queryset, name, value):
        return super().search(queryset, name, value).distinct()


class LocationMappingFilter(_MappingFilter):
    search_fields = ("storefront_location", "erp_warehouse")
    active = _yes_no("Active")

    class Meta:
        model = LocationMapping
        fields = ["q", "connection", "active"]


class DepotMappingFilter(_MappingFilter):
    search_fields = ("country", "storefront_location", "depot_code")
    active = _yes_no("Active")

    class Meta:
        model = DepotMapping
        fields = ["q", "connection", "active"]


class TaxCodeMappingFilter(_MappingFilter):
    search_fields = ("tax_category", "country", "erp_tax_code")
    country = django_filters.CharFilter(lookup_expr="iexact", label="Country")

    class Meta:
        model = TaxCodeMapping
        fields = ["q", "connection", "country"]


class CarrierMappingFilter(_MappingFilter):
    search_fields = ("erp_carrier", "tracking_company")
    active = _yes_no("Active")

    class Meta:
        model = CarrierMapping
        fields = ["q", "connection", "active"]
