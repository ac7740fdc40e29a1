import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load every view module now, not on each server process's first request (which would otherwise
# answer a webhook seconds late right after a start or a restart).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
