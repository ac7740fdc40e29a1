"""django-q2 entry points of the replenishment flow: load, call the flow. No business logic here."""
from __future__ import annotations


def _planner_connections():
    from integrations.models import Connection

    return Connection.objects.filter(kind="inventory_planner", active=True).order_by("pk")


def pull_recommendations() -> list[dict]:
    # Safe twice: a recommendation is unique per connection and planner purchase order; decided ones are not changed.
    from .pull import recommendations_pull

    return [recommendations_pull(connection=c) for c in _planner_connections()]


def check_planner_catalogue() -> list[dict]:
    # Safe twice: variants are stored by their planner id; an exception per SKU recurs instead of doubling.
    from .pull import planner_catalogue_check

    return [planner_catalogue_check(connection=c) for c in _planner_connections()]


def place_recommendation(recommendation_id: int) -> str:
    # Safe twice: the ERP purchase order is unique by its external reference (looked up first), and each
    # status moves by a conditional update.
    from .approve import recommendation_place

    return recommendation_place(recommendation_id=recommendation_id)


def tell_planner_rejected(recommendation_id: int) -> str:
    # Safe twice: the planner's purchase order is set to cancelled (a value, not a change), and one already
    # cancelled there is left alone.
    from .approve import planner_mark_rejected

    return planner_mark_rejected(recommendation_id=recommendation_id).planner_status


def sync_receipts() -> dict:
    # Safe twice: receipts set the received quantities (never add), the cursor moves after its page.
    from .receipts import receipts_sync

    return receipts_sync()
