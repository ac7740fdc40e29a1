"""The one function that moves a Recommendation's status, by the table next to the model."""
from __future__ import annotations

from django.utils import timezone

from integrations.models import Recommendation
from integrations.models.planner import TRANSITIONS


class RecommendationRefused(Exception):
    """What a person asked cannot be done to this recommendation (already decided, unknown item…)."""


def recommendation_move(recommendation_id: int, *, frm: str, to: str, **fields) -> bool:
    """Move from `frm` to `to` by a conditional update (0 rows: another worker moved it first)."""
    if to not in TRANSITIONS[frm]:
        raise ValueError(f"a recommendation does not go from {frm} to {to}")
    fields.setdefault("updated_at", timezone.now())  # update() skips auto_now; the resume sweep reads it
    return bool(Recommendation.objects.filter(pk=recommendation_id, status=frm).update(status=to, **fields))
