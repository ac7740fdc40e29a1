"""Dispatch to storefront: what the ERP confirmed as gone reaches the storefront once.

A confirmed ERP dispatch arrives by cursor polling (poll.py, every minute) or by the ERP's signed
webhook through the inbox (events.py); either way it is stored once by its ERP id (store.py), the
order moves to partly dispatched / dispatched with a timeline entry, and one storefront update is
queued. send.py makes it (Shopify fulfilments per fulfillment order, commercetools parcels and
shipment state) exactly once, retrying with backoff; the sweep (sweep.py) re-queues what is due.
"""
from .events import dispatch_event_process
from .poll import dispatches_poll
from .send import dispatch_send
from .store import dispatch_store, erp_key
from .sweep import fulfilment_sweep
from . import retries  # noqa: F401  (the registry's retry handlers)

__all__ = ["dispatch_event_process", "dispatch_send", "dispatch_store", "dispatches_poll", "erp_key",
           "fulfilment_sweep"]
