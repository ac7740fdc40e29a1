import pytest
from django.contrib.sessions.backends.db import SessionStore


@pytest.fixture
def session(db):
    """The admin's session, as the connections screen would pass request.session."""
    store = SessionStore()
    store.create()
    return store


@pytest.fixture
def sandbox_shop(sandbox, settings):
    """The sandbox's first shop as an admin would name it (its URL under the configured sandbox)."""
    settings.SITE_URL = "http://localhost:8000"
    return f"{sandbox.url}/shopify"
