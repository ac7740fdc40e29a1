"""The registry of exception types: each flow registers the types it can raise, with the owning
team, severity, a title template, an operator's runbook and the handler that retries the step."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from django.utils.module_loading import import_string


class Team:
    OPS = "ops"
    FINANCE = "finance"
    ECOMMERCE = "ecommerce"
    CHOICES = [(OPS, "Ops"), (FINANCE, "Finance"), (ECOMMERCE, "E-commerce")]


class Severity:
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    CHOICES = [(LOW, "Low"), (MEDIUM, "Medium"), (HIGH, "High"), (CRITICAL, "Critical")]


@dataclass(frozen=True)
class ExceptionType:
    code: str
    team: str
    severity: str
    title: str  # a template: "SKU {sku} has no ERP item"
    runbook: str  # what happened, what to check, how to fix, who to escalate to
    retry_handler: str = ""  # dotted path of a function(exception_record) -> bool (True = step succeeded)
    system: str = ""  # which outside system is concerned (erp, shopify, commercetools, ...)
    sla: timedelta = field(default=timedelta(hours=24))

    def render_title(self, context: dict) -> str:
        try:
            return self.title.format(**context)
        except (KeyError, IndexError, ValueError):
            return self.title

    def retry_function(self) -> Callable | None:
        return import_string(self.retry_handler) if self.retry_handler else None

    def __str__(self) -> str:
        return self.code


class UnregisteredExceptionType(LookupError):
    pass


_REGISTRY: dict[str, ExceptionType] = {}


def register(exc_type: ExceptionType) -> ExceptionType:
    existing = _REGISTRY.get(exc_type.code)
    if existing is not None and existing != exc_type:
        raise ValueError(f"exception type {exc_type.code!r} is registered twice with different definitions")
    _REGISTRY[exc_type.code] = exc_type
    return exc_type


def get(code: str) -> ExceptionType:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise UnregisteredExceptionType(f"exception type {code!r} is not registered") from None


def find(code: str) -> ExceptionType | None:
    """The type, or None for a code no longer registered (old rows stay readable)."""
    return _REGISTRY.get(code)


def unregister(code: str) -> None:
    """For tests that register a throwaway type."""
    _REGISTRY.pop(code, None)


def all_types() -> list[ExceptionType]:
    return sorted(_REGISTRY.values(), key=lambda t: t.code)


def choices() -> list[tuple[str, str]]:
    return [(t.code, t.code.replace("_", " ")) for t in all_types()]


def systems() -> list[tuple[str, str]]:
    return [(s, s) for s in sorted({t.system for t in _REGISTRY.values() if t.system})]
