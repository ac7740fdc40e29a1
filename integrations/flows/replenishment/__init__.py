"""Replenishment back from Inventory Planner: its draft purchase orders are read on a schedule
(pull.py) and reviewed by ops; an approval raises the purchase order in the ERP once and marks it in
the planner (approve.py); receipts the ERP records flow back to both (receipts.py)."""
from .approve import (
    line_quantity_set,
    parse_quantity,
    purchase_order_request,
    recommendation_approve,
    recommendation_place,
    recommendation_reject,
)
from .pull import planner_catalogue_check, recommendations_pull, urgency_of
from .receipts import receipts_apply, receipts_sync
from .state import RecommendationRefused
from . import retries  # noqa: F401  (the registry's retry handlers)

__all__ = ["RecommendationRefused", "line_quantity_set", "parse_quantity", "planner_catalogue_check",
           "purchase_order_request", "receipts_apply", "receipts_sync", "recommendation_approve",
           "recommendation_place", "recommendation_reject", "recommendations_pull", "urgency_of"]
