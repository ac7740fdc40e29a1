from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions_queue"
    verbose_name = "Exceptions"
