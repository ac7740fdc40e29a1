"""django-q2 entry points of the fulfilment flow: load by id, call the flow. No business logic here."""
from __future__ import annotations


def poll_dispatches() -> dict:
    # Safe twice: each dispatch is stored once (unique ERP dispatch id); the cursor moves only after its page is stored.
    from .poll import dispatches_poll

    return dispatches_poll()


def send_dispatch(dispatch_id: int) -> str:
    # Safe twice: the dispatch is claimed by a conditional update; its writes are keyed by the dispatch in the
    # outbound-write log, and what the storefront already holds for it is read before anything is sent.
    from .send import dispatch_send

    return dispatch_send(dispatch_id=dispatch_id)


def sweep_fulfilment() -> dict:
    # Safe twice: it takes only dispatches past their backoff or lease; each is claimed by a conditional update.
    from .sweep import fulfilment_sweep

    return fulfilment_sweep()
