"""The inbox: webhook views (webhooks.py) verify and store; store.py writes each event once with its
task; routing.py names the flow of each topic. Nothing is processed at the edge."""
from .routing import flow_for, handle, resource_id_for
from .store import enqueue_event, inbound_event_store

__all__ = ["enqueue_event", "flow_for", "handle", "inbound_event_store", "resource_id_for"]
