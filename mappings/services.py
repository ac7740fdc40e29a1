"""Writing the mapping tables: ERP reality checks, save/delete/revert with history, and the open
exceptions a row affects. Views and the CSV import call these; nothing else writes mapping rows."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.db.models import Model, Q, QuerySet

from exceptions_queue.models import ExceptionRecord

from .models import DepotMapping, KitComponent, LocationMapping, SkuMapping, TaxCodeMapping

log = logging.getLogger("ledgerline.mappings")

# Validation is interactive: one quick retry at most, then tell the admin the ERP is unreachable.
_VALIDATION_MAX_ATTEMPTS = 2


class ErpUnavailable(Exception):
    """The ERP could not be asked (outage, timeout, bad credentials): validation cannot decide."""


def _erp_client():
    from integrations.connectors import get_erp

    client = get_erp()
    if hasattr(client, "max_attempts"):
        client.max_attempts = min(client.max_attempts, _VALIDATION_MAX_ATTEMPTS)
    return client


def _ask_erp(what: str, call):
    from integrations.connectors.base import ConnectorError

    try:
        return call()
    except ConnectorError as exc:
        log.warning("ERP unavailable while checking %s: %s", what, exc)
        raise ErpUnavailable(f"Could not reach the ERP to check {what} ({exc}). Nothing was saved; try again.") from exc
    except (ImportError, ValueError, OSError) as exc:  # connector missing or misconfigured
        log.warning("ERP not usable while checking %s: %s", what, exc)
        raise ErpUnavailable(f"Could not ask the ERP about {what} ({exc}). Nothing was saved; try again.") from exc


def erp_item_exists(code: str) -> bool:
    """Is `code` an ERP item? Raises ErpUnavailable when the ERP cannot be asked."""
    return _ask_erp(f"item {code}", lambda: bool(_erp_client().item_exists(code)))


def erp_depot_codes() -> set[str]:
    """The ERP's warehouse / Prima Depot codes. Raises ErpUnavailable when the ERP cannot be asked."""
    return _ask_erp("depots", lambda: set(_erp_client().list_depots()))


@dataclass
class ErpChecker:
    """Answers ERP questions once per code, so validating a 5,000-row CSV asks each thing once."""

    _items: dict[str, bool] = field(default_factory=dict)
    _depots: set[str] | None = None

    def item_exists(self, code: str) -> bool:
        if code not in self._items:
            self._items[code] = erp_item_exists(code)
        return self._items[code]

    def depot_codes(self) -> set[str]:
        if self._depots is None:
            self._depots = erp_depot_codes()
        return self._depots


# --- writes -----------------------------------------------------------------------------------


def _attach_actor(instance: Model, actor, reason: str = "") -> None:
    # simple-history takes the user from HistoryRequestMiddleware; set it explicitly too, so
    # changes made outside a request (tasks, shell) or in a CSV apply are attributed.
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor
    if reason:
        instance._change_reason = reason[:100]


@transaction.atomic
def mapping_save(*, form, actor, reason: str = "") -> Model:
    """Save a validated mapping form (with kit components for SKUs), recorded in history."""
    instance = form.save(commit=False)
    _attach_actor(instance, actor, reason)
    instance.full_clean(validate_constraints=False)  # constraints were checked (with our messages) by the form
    instance.save()
    components = getattr(form, "parsed_components", None)
    if isinstance(instance, SkuMapping) and components is not None:
        sku_components_set(sku=instance, components=components, actor=actor)
    return instance


def sku_components_set(*, sku: SkuMapping, components: list[tuple[str, int]], actor) -> None:
    wanted = dict(components)
    for comp in list(sku.components.all()):
        if comp.erp_item_code not in wanted:
            _attach_actor(comp, actor)
            comp.delete()
        elif comp.quantity != wanted[comp.erp_item_code]:
            comp.quantity = wanted.pop(comp.erp_item_code)
            _attach_actor(comp, actor)
            comp.save()
        else:
            wanted.pop(comp.erp_item_code)
    for code, qty in wanted.items():
        comp = KitComponent(kit=sku, erp_item_code=code, quantity=qty)
        _attach_actor(comp, actor)
        comp.save()


@transaction.atomic
def mapping_delete(*, row: Model, actor) -> None:
    _attach_actor(row, actor)
    row.delete()


@transaction.atomic
def mapping_revert(*, row: Model, history_id: int, actor) -> Model:
    """Put the row back as it was in one historical version; the revert is itself a new version."""
    version = row.history.get(history_id=history_id)
    restored = version.instance
    _attach_actor(restored, actor, f"Reverted to version {history_id} of {version.history_date:%Y-%m-%d %H:%M}")
    restored.save()
    if isinstance(restored, SkuMapping):
        # A kit's components are rows of their own, saved just after the SKU row: the version's
        # components are those that stood until the row's next version was written.
        later = row.history.filter(history_date__gt=version.history_date).order_by("history_date").first()
        moment = later.history_date if later else timezone.now()
        components = [(c.erp_item_code, c.quantity) for c in KitComponent.history.as_of(moment).filter(kit_id=row.pk)]
        sku_components_set(sku=restored, components=components, actor=actor)
    return restored


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object
    label: str = ""  # the field's human name ("ERP item"), for the screens


@dataclass(frozen=True)
class HistoryEntry:
    version: object  # the HistoricalRecord row
    changes: tuple[Change, ...]

    @property
    def who(self) -> str:
        user = self.version.history_user
        return user.get_username() if user else "Ledgerline"


def mapping_history(row: Model) -> list[HistoryEntry]:
    """Newest first: who changed what, when, from -> to (diff against the previous version)."""
    versions = list(row.history.select_related("history_user").order_by("-history_date", "-history_id"))
    labels = {f.attname: str(f.verbose_name) for f in row._meta.concrete_fields}
    labels.update({f.name: str(f.verbose_name) for f in row._meta.concrete_fields})
    from integrations.models import Connection

    codes = dict(Connection.objects.values_list("pk", "code"))

    def shown(name: str, value):
        return codes.get(value, value) if name in ("connection", "connection_id") else value

    entries = []
    for i, version in enumerate(versions):
        previous = versions[i + 1] if i + 1 < len(versions) else None
        if previous is None:
            changes = tuple(
                Change(f.attname, None, shown(f.attname, getattr(version, f.attname)), labels[f.attname])
                for f in row._meta.concrete_fields
                if f.attname != "id"
            )
        else:
            delta = version.diff_against(previous)
            changes = tuple(
                Change(c.field, shown(c.field, c.old), shown(c.field, c.new), labels.get(c.field, c.field))
                for c in delta.changes
            )
        entries.append(HistoryEntry(version, changes))
    return entries


# --- open exceptions a row affects ------------------------------------------------------------

DEPOT_EXCEPTION_TYPES = ("invalid_depot", "unknown_depot", "missing_depot", "mapping_stale_depot")
TAX_EXCEPTION_TYPES = ("missing_tax_mapping", "unknown_tax_code", "invalid_tax_code")
LOCATION_EXCEPTION_TYPES = ("unknown_location", "mapping_stale_location")


def affected_exceptions(row: Model) -> QuerySet[ExceptionRecord]:
    """Open / in-progress exceptions this mapping row may fix (shown after a save, with a retry)."""
    qs = ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    if isinstance(row, SkuMapping):
        return qs.filter(sku=row.storefront_sku)
    if isinstance(row, DepotMapping):
        match = Q(type_code__in=DEPOT_EXCEPTION_TYPES)
        if row.country:
            match &= Q(context__country=row.country) | ~Q(context__has_key="country")
        return qs.filter(match | Q(context__depot=row.depot_code))
    if isinstance(row, TaxCodeMapping):
        match = Q(type_code__in=TAX_EXCEPTION_TYPES)
        if row.country:
            match &= Q(context__country=row.country) | ~Q(context__has_key="country")
        return qs.filter(match)
    if isinstance(row, LocationMapping):
        return qs.filter(
            Q(type_code__in=LOCATION_EXCEPTION_TYPES, context__location=row.storefront_location)
            | Q(context__location=row.storefront_location)
        )
    return qs.none()


def affected_exceptions_retry(*, row: Model, actor, label: str = ""):
    """Queue a retry (django-q2) of every open exception the row affects; the returned BulkJob
    counts them off one by one, so the page can show each one's outcome as it comes."""
    from exceptions_queue.services import exceptions_retry_queue

    return exceptions_retry_queue(records=list(affected_exceptions(row)), actor=actor, label=label)


@dataclass(frozen=True)
class RetryRow:
    """One exception of a retry job, as the mapping page shows it."""

    exception_id: int
    record: ExceptionRecord | None
    state: str  # "retrying" (not reached yet), "resolved", "ignored", "failing", "gone"

    @property
    def failure(self) -> str:
        if self.record is None:
            return ""
        return self.record.last_error or self.record.message


def retry_job_rows(job) -> list[RetryRow]:
    """Each exception of the job in the order the job retries them, with where it stands now."""
    records = ExceptionRecord.objects.in_bulk(job.exception_ids)
    rows = []
    for index, pk in enumerate(job.exception_ids):
        record = records.get(pk)
        if record is None:
            state = "gone"
        elif index >= job.done and not job.is_finished:
            state = "retrying"
        elif record.is_active:
            state = "failing"
        else:
            state = record.status  # resolved or ignored
        rows.append(RetryRow(pk, record, state))
    return rows
