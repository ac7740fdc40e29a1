from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Flows register their exception types on import: load them all so the registry is full.
        from integrations import flows  # noqa: F401
