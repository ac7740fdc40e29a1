"""Order to cash: a paid/authorised storefront order becomes exactly one ERP Sales Order.

Path of one order: a stored inbound event is applied to its `OrderLink` (events.py); once the payment
is captured or authorised the link is claimed and posted (posting.py): the Sales Order document is
built from the storefront's own figures by a pure builder (document.py) and checked to total what
the customer paid, the customer is matched or created (customers.py), and the Sales Order is created
with the storefront order id as its external reference. After posting (after_posting.py) a
cancellation cancels the ERP order, and an edit or a refund becomes an owned exception. The order's
states move only as state.TRANSITIONS allows; the sweep (sweep.py) re-runs whatever a lost task left.
"""
from .common import CLAIM_LEASE, auto_retry_delay, erp_caches_clear
from .connection_settings import OrderSettings, connection_settings
from .document import Problem, build_sales_order
from .events import inbound_event_process, orders_stuck_repost
from .after_posting import order_cancel_in_erp, sale_summary
from .posting import order_post_to_erp, sales_order_for
from .retries import (
    order_retry_post, retry_cancel_exception, retry_event_exception, retry_order_exception,
)
from .state import TRANSITIONS, can_transition
from . import sweep  # registers its exception types; it uses the names above at call time

__all__ = [
    "CLAIM_LEASE", "TRANSITIONS", "OrderSettings", "Problem", "auto_retry_delay", "build_sales_order", "can_transition",
    "connection_settings", "erp_caches_clear", "inbound_event_process", "order_cancel_in_erp", "order_post_to_erp",
    "order_retry_post", "orders_stuck_repost", "retry_cancel_exception", "retry_event_exception",
    "retry_order_exception", "sale_summary", "sales_order_for", "sweep",
]
