"""Template tags of the mapping screens: human values, the proposals badge, and the mapping offer
on an exception's page (propose / add the mapping it needs), computed here so the exception views
need not know about mappings."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django import template
from django.db.models import Model
from django.urls import reverse

from config.roles import has_role

from .. import proposals
from ..models import MappingProposal
from ..tables import TableSpec

register = template.Library()


@register.filter
def human(value) -> str:
    """A stored value as a person reads it: Yes / No for booleans, a dash for nothing."""
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if value is None or value == "":
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


@register.simple_tag
def pending_proposal_count() -> int:
    return MappingProposal.objects.filter(status=MappingProposal.Status.PENDING).count()


@dataclass(frozen=True)
class MappingOffer:
    """What the exception page offers about the mapping row this exception needs."""

    spec: TableSpec
    key: str
    existing: Model | None  # the row is already there (it needs correcting, not adding)
    pending: MappingProposal | None  # somebody already proposed it
    can_add: bool  # admin: straight to the prefilled add form
    can_propose: bool  # the exception's team: propose it for an admin to approve
    propose_url: str
    add_url: str


@register.simple_tag(takes_context=True)
def mapping_offer(context) -> MappingOffer | None:
    record, user = context.get("exc"), context.get("user")
    if record is None or user is None or not getattr(record, "is_active", False):
        return None
    target = proposals.proposal_target(record)
    if target is None:
        return None
    key = target.key
    return MappingOffer(
        spec=target.spec,
        key=key,
        existing=proposals.existing_row(target),
        pending=proposals.pending_proposal_for(table=target.spec.slug, key=key),
        can_add=has_role(user),
        can_propose=has_role(user, record.team),
        propose_url=f"{reverse('mapping-propose')}?{urlencode({'exception': record.pk})}",
        add_url=f"{reverse('mapping-add', args=[target.spec.slug])}?{urlencode(target.initial, doseq=True)}",
    )
