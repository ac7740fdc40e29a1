from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format

from ..filters import team_scope
from ..models import ExceptionRecord

register = template.Library()

BADGE_CAP = 1000  # counting stops here: the nav shows "999+" rather than scan a huge backlog per page view


@register.simple_tag(takes_context=True)
def open_exception_count(context) -> int:
    """Open exceptions of the signed-in user's teams (all teams for admin and readers without a team)."""
    user = context.get("user")
    qs = ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    teams = team_scope(user) if user is not None else []
    if teams:
        qs = qs.filter(team__in=teams)
    return qs.order_by()[:BADGE_CAP].count()


@register.filter
def badge_display(count: int) -> str:
    return f"{BADGE_CAP - 1}+" if count >= BADGE_CAP else str(count)


ACRONYMS = {"sku": "SKU", "skus": "SKUs", "erp": "ERP", "ats": "ATS", "id": "ID", "api": "API", "po": "PO", "vat": "VAT"}


@register.filter
def type_label(code: str) -> str:
    """An exception type's code as words: "unknown_sku" -> "Unknown SKU"."""
    words = [ACRONYMS.get(word, word) for word in str(code).split("_") if word]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


@register.simple_tag
def exception_type_label(code: str) -> str:
    return type_label(code)


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key) if mapping else None


@register.filter
def spaced(value: str) -> str:
    return str(value).replace("_", " ")


@register.filter
def team_label(code: str) -> str:
    from ..registry import Team

    return dict(Team.CHOICES).get(code, code)


SYSTEM_LABELS = {"erp": "ERP", "rest_erp": "REST ERP", "prima": "Prima", "shopify": "Shopify",
                 "commercetools": "commercetools", "inventory_planner": "Inventory Planner"}


@register.filter
def system_label(code: str) -> str:
    return SYSTEM_LABELS.get(code, str(code).replace("_", " "))


@register.filter
def moment(value) -> str:
    """A time as briefly as it stays clear: "10:02" today, "3 Dec 10:02" this year, else with the year."""
    if not value:
        return ""
    local, now = timezone.localtime(value), timezone.localtime()
    if local.date() == now.date():
        return date_format(local, "H:i")
    if local.year == now.year:
        return date_format(local, "j M H:i")
    return date_format(local, "j M Y H:i")
