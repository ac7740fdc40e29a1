"""Mapping tables: an overview (the editing screens build on it)."""
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping


@require_GET
def mapping_index(request):
    tables = [
        ("SKUs", SkuMapping.objects.select_related("connection")[:200]),
        ("Locations / channels", LocationMapping.objects.select_related("connection")[:200]),
        ("Depots", DepotMapping.objects.select_related("connection")[:200]),
        ("Tax codes", TaxCodeMapping.objects.select_related("connection")[:200]),
    ]
    return render(request, "mappings/index.html", {"tables": tables, "nav": "mappings"})
