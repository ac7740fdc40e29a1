from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "mappings"
    verbose_name = "Mappings"

    def ready(self):
        from . import health  # noqa: F401  registers the mapping health exception types
        from . import signals  # noqa: F401  a mapping change makes the order flow re-read the ERP's facts
