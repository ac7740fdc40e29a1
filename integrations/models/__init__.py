"""What Ledgerline remembers of what it moved, one module per domain noun: connections, the inbox,
order links, the outbound-write log, inventory."""
from .backfill import BackfillRun, ConnectionHealthCheck
from .catalogue import CatalogItem, CatalogPublication, CatalogRun
from .ct_delivery import CommercetoolsResourceSequence
from .drift import DriftFinding, DriftRun
from .erp_budget import ErpBudget, ReadySalesOrder
from .connections import ERP_KINDS, STOREFRONT_KINDS, Connection, ConnectionKind, ConnectionQuerySet, Platform
from .inbox import InboundEvent, PollCursor, SecurityEvent
from .fulfilment import Dispatch, DispatchCursor
from .inventory import InventoryDriftSample, InventoryLevel, InventorySyncRun
from .orders import CustomerLink, OrderEvent, OrderLink
from .payouts import BalanceTransaction, Payout, ReconciliationLine, SettlementFile
from .planner import PlannerVariant, ReceiptCursor, Recommendation, RecommendationLine
from .planner_feeds import FeedRun, PlannerItem, PlannerPurchaseOrderLine, PlannerSalesLine, PlannerStock
from .refunds import Refund
from .writes import OutboundWrite

__all__ = [
    "BackfillRun", "ConnectionHealthCheck", "ERP_KINDS", "STOREFRONT_KINDS", "Connection", "ConnectionKind", "ConnectionQuerySet", "CustomerLink",
    "InboundEvent", "InventoryDriftSample", "InventoryLevel", "InventorySyncRun", "OrderEvent", "OrderLink",
    "OutboundWrite", "Platform", "PollCursor", "Refund", "SecurityEvent",
]
