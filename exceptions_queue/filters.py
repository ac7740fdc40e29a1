"""The inbox filters (django-filter), shared by the HTMX screens and the API."""
from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from config.roles import ADMIN, user_roles
from integrations.models import OrderLink

from . import registry
from .models import ExceptionRecord
from .registry import Severity, Team

STATUS_CHOICES = [("active", "Open or in progress")] + list(ExceptionRecord.Status.choices)
AGE_CHOICES = [
    ("1h", "Under an hour"),
    ("24h", "Under a day"),
    ("7d", "Under a week"),
    ("older", "Older than a week"),
]
AGE_DELTAS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


def team_scope(user) -> list[str]:
    """The teams whose exceptions a user acts on; empty for admin and for readers without a team."""
    roles = user_roles(user)
    if ADMIN in roles:
        return []
    return sorted(roles & {t for t, _ in Team.CHOICES})


def assignee_choices():
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[t for t, _ in Team.CHOICES])
        .distinct()
        .order_by("username")
        .values_list("username", flat=True)
    )
    return [("me", "Me"), ("none", "Unassigned")] + [(u, u) for u in users]


class ExceptionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Order / SKU")
    type = django_filters.ChoiceFilter(field_name="type_code", choices=registry.choices, empty_label="Any type")
    team = django_filters.ChoiceFilter(
        choices=[("mine", "My team")] + Team.CHOICES, method="filter_team", empty_label="All teams"
    )
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status", empty_label="Any status")
    severity = django_filters.ChoiceFilter(choices=Severity.CHOICES, empty_label="Any severity")
    system = django_filters.ChoiceFilter(choices=registry.systems, empty_label="Any system")
    age = django_filters.ChoiceFilter(choices=AGE_CHOICES, method="filter_age", empty_label="Any age")
    overdue = django_filters.BooleanFilter(method="filter_overdue", widget=forms.CheckboxInput, label="Overdue only")
    assignee = django_filters.ChoiceFilter(choices=assignee_choices, method="filter_assignee", empty_label="Anyone")
    fingerprint = django_filters.CharFilter(field_name="fingerprint", widget=forms.HiddenInput)

    class Meta:
        model = ExceptionRecord
        fields = ["q", "type", "team", "status", "severity", "system", "age", "overdue", "assignee", "fingerprint"]

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # The order side is a subquery, not a join: the inbox keeps walking its own index in page order.
        orders = OrderLink.objects.filter(
            Q(order_number__icontains=value.lstrip("#")) | Q(storefront_order_id=value)
        ).values("pk")
        return queryset.filter(Q(sku__icontains=value) | Q(order__in=orders))

    def filter_team(self, queryset, name, value):
        if value == "mine":
            teams = team_scope(self.request.user) if self.request else []
            return queryset.filter(team__in=teams) if teams else queryset
        return queryset.filter(team=value)

    def filter_status(self, queryset, name, value):
        if value == "active":
            return queryset.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
        return queryset.filter(status=value)

    def filter_age(self, queryset, name, value):
        now = timezone.now()
        if value == "older":
            return queryset.filter(first_seen__lt=now - timedelta(days=7))
        return queryset.filter(first_seen__gte=now - AGE_DELTAS[value])

    def filter_overdue(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(status__in=ExceptionRecord.ACTIVE_STATUSES, due_at__lt=timezone.now())

    def filter_assignee(self, queryset, name, value):
        if value == "me":
            return queryset.filter(assignee=self.request.user if self.request else None)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee__username=value)


def inbox_defaults(request, data):
    """The inbox opens on the signed-in user's team's open exceptions (admin and readers: all teams)."""
    data = data.copy()
    if "status" not in data:
        data["status"] = "active"
    if "team" not in data:
        data["team"] = "mine" if team_scope(request.user) else ""
    return data
