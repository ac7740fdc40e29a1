from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Flows register their exception types on import: load them all so the registry is full.
        from integrations import flows  # noqa: F401
        from integrations.drift import exception_types  # noqa: F401
        from django.db.models.signals import post_delete, post_save

        from integrations.models import Connection
        from integrations.inbox.webhooks import connection_cache_clear

        # The task cluster's in-process queues survive a killed worker (config/q_queues.py).
        from config.q_queues import install as install_q_queues

        install_q_queues()
        post_save.connect(connection_cache_clear, sender=Connection, dispatch_uid="connection-cache")
        post_delete.connect(connection_cache_clear, sender=Connection, dispatch_uid="connection-cache-del")
