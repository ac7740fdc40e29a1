"""Connections screen (admins only): list with each connection's stored health, add (Shopify by
OAuth or client credentials, commercetools, REST ERP, Prima, Inventory Planner), edit with
write-only secrets, deactivate / reactivate, Test connection, Check now and Repair, backfill of a
storefront's orders with live progress, import of one order by its number, and the history.

Secrets are write-only: a password field that is never filled in (blank keeps the stored value),
never echoed after a failed save, never in history (Connection.history excludes the credentials;
the change reason names which secrets were replaced) and never logged.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode
from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.core.exceptions import BadRequest
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import role_required

from ..flows.backfill import BackfillRefused, ResyncRefused, backfill_start, order_import_by_number
from ..flows.backfill.health_checks import connection_health_refresh, stored_lines
from ..flows.backfill.runs import backfill_recount
from ..models import BackfillRun, Connection, ConnectionHealthCheck, ConnectionKind, OrderLink
from ..onboarding import shopify_oauth
from ..onboarding.health import connection_test, worst

log = logging.getLogger("ledgerline.connections")
ADMIN_ONLY = "Only admins may manage connections."
T = "integrations/connections/"

# What each kind of connection is configured with: (settings key, label, help) and secrets.
KIND_SETTINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "shopify": (("shop_domain", "Shop domain", "e.g. my-shop.myshopify.com"),
                ("api_version", "API version", "blank: the configured one (e.g. 2026-04)")),
    "commercetools": (("project_key", "Project key", ""),
                      ("auth_url", "Auth URL", "e.g. https://auth.europe-west1.gcp.commercetools.com"),
                      ("scope", "Scopes", "space separated, e.g. manage_orders:my-project view_products:my-project")),
    "rest_erp": (),
    "prima": (("company", "Company ID", "blank: the instance's own company"),),
    "inventory_planner": (),
}
KIND_SECRETS: dict[str, tuple[str, ...]] = {
    "shopify": ("access_token", "webhook_secret"),
    "commercetools": ("client_id", "client_secret", "subscription_token"),
    "rest_erp": ("api_key",),
    "prima": (),
    "inventory_planner": ("api_key", "account_id"),
}
BASE_URL_LABEL = {"shopify": "Shop admin URL", "commercetools": "API URL (region)", "rest_erp": "API base URL",
                  "prima": "Prima URL", "inventory_planner": "API base URL"}


class ConnectionScreenForm(forms.ModelForm):
    """A connection of one kind: its URL, its settings and its write-only secrets."""

    base_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Connection
        fields = ["name", "code", "base_url"]

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["code"].help_text = "Short name in webhook addresses (letters, digits, -)"
        self.fields["base_url"].label = BASE_URL_LABEL.get(kind, "Base URL")
        self.fields["base_url"].help_text = "blank: the environment's"
        own = (self.instance.settings or {}) if self.instance.pk else {}
        for key, label, help_text in KIND_SETTINGS.get(kind, ()):
            self.fields[f"setting_{key}"] = forms.CharField(label=label, required=False, help_text=help_text,
                                                           initial=own.get(key, ""), max_length=500)
        stored = (self.instance.credentials or {}) if self.instance.pk else {}
        for name in KIND_SECRETS.get(kind, ()):
            state = "set — leave blank to keep it" if stored.get(name) else "not set (the environment's value is used)"
            self.fields[f"secret_{name}"] = forms.CharField(
                label=name.replace("_", " ").capitalize(), required=False, strip=True, max_length=2000,
                help_text=state, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))

    def secrets_typed(self) -> list[str]:
        return [name for name in KIND_SECRETS.get(self.kind, ()) if self.cleaned_data.get(f"secret_{name}")]

    def save(self, commit=True):
        connection = super().save(commit=False)
        connection.kind = self.kind
        own = dict(connection.settings or {})
        for key, _, _ in KIND_SETTINGS.get(self.kind, ()):
            value = (self.cleaned_data.get(f"setting_{key}") or "").strip()
            if value:
                own[key] = value
            else:
                own.pop(key, None)
        connection.settings = own
        values = dict(connection.credentials or {})
        for name in self.secrets_typed():
            values[name] = self.cleaned_data[f"secret_{name}"]
        connection.credentials = values
        typed = self.secrets_typed()
        # History keeps no credentials; it says which were replaced (never their values).
        connection._change_reason = f"secrets replaced: {', '.join(typed)}" if typed else None
        if commit:
            connection.save()
        return connection


class ShopifyConnectForm(forms.Form):
    shop = forms.CharField(label="Shop domain", max_length=200,
                           help_text="The shop's myshopify.com domain, e.g. my-shop.myshopify.com")
    name = forms.CharField(label="Name", max_length=100, required=False, help_text="blank: the shop's domain")


class ShopifyClientCredentialsForm(ShopifyConnectForm):
    client_id = forms.CharField(label="Client ID", required=False, max_length=200,
                                widget=forms.PasswordInput(render_value=False),
                                help_text="blank: the configured app's")
    client_secret = forms.CharField(label="Client secret", required=False, max_length=200,
                                    widget=forms.PasswordInput(render_value=False),
                                    help_text="blank: the configured app's")


class BackfillForm(forms.Form):
    since = forms.DateField(label="Import orders since", widget=forms.DateInput(attrs={"type": "date"}))

    def clean_since(self):
        day = self.cleaned_data["since"]
        if day > timezone.localdate():
            raise forms.ValidationError("Choose a day on or before today.")
        return day

    def since_moment(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.cleaned_data["since"], time.min))


class OrderNumberForm(forms.Form):
    number = forms.CharField(label="Order number", max_length=100, help_text="As the storefront shows it, e.g. #1001")


# --- access -------------------------------------------------------------------------------------


def _get_connection(pk: int) -> Connection:
    return get_object_or_404(Connection, pk=pk)


def _health(connection: Connection) -> dict:
    check = ConnectionHealthCheck.objects.filter(connection=connection).first()
    return {"check": check, "lines": stored_lines(check),
            "repairable": any(line.repairable for line in stored_lines(check))}


def _detail_context(request, connection: Connection, **extra) -> dict:
    runs = list(connection.backfill_runs.all()[:5]) if connection.is_storefront else []
    return {"connection": connection, "nav": "connections", **_health(connection), "runs": runs,
            "backfill_form": extra.pop("backfill_form", None) or BackfillForm(),
            "number_form": extra.pop("number_form", None) or OrderNumberForm(),
            "secrets": [(name.replace("_", " ").capitalize(), bool((connection.credentials or {}).get(name)))
                        for name in KIND_SECRETS.get(connection.kind, ())],
            "history": _history(connection), **extra}


def _history(connection: Connection) -> list[dict]:
    entries = []
    versions = list(connection.history.select_related("history_user").all()[:30])
    for version, previous in zip(versions, versions[1:] + [None]):
        changes = []
        if previous is not None:
            changes = [f"{c.field}: {c.old!r} → {c.new!r}" for c in version.diff_against(previous).changes]
        entries.append({"version": version, "who": version.history_user or "the system", "changes": changes})
    return entries


# --- list, add, edit ------------------------------------------------------------------------------


@require_GET
@role_required(message=ADMIN_ONLY)
def connection_list(request: HtmxHttpRequest):
    rows = []
    checks = {c.connection_id: c for c in ConnectionHealthCheck.objects.all()}
    for connection in Connection.objects.all():
        own = connection.settings or {}
        rows.append({"connection": connection, "check": checks.get(connection.pk),
                     "api_version": own.get("api_version", "") if connection.kind == "shopify" else ""})
    return render_page(request, T + "list.html", {"rows": rows, "nav": "connections", "kinds": ConnectionKind.choices},
                       fragment="connections-table")


def _kind(request) -> str:
    kind = request.GET.get("kind") or request.POST.get("kind") or ""
    if kind and kind not in ConnectionKind.values:
        raise BadRequest("kind must be one of: " + ", ".join(ConnectionKind.values))
    return kind


@require_http_methods(["GET", "POST"])
@role_required(message=ADMIN_ONLY)
def connection_add(request: HtmxHttpRequest):
    kind = _kind(request)
    if not kind:
        return render_page(request, T + "add.html", {"kinds": ConnectionKind.choices, "nav": "connections"})
    if request.method == "POST":
        form = ConnectionScreenForm(request.POST, kind=kind)
        if form.is_valid():
            connection = form.save()
            log.info("connection %s (%s) added by %s", connection.code, kind, request.user)
            messages.success(request, f"Added {connection.name}. Test it below.")
            return redirect("connection-detail", pk=connection.pk)
    else:
        form = ConnectionScreenForm(kind=kind)
    return render_page(request, T + "form.html", {"form": form, "kind": kind, "kind_label": ConnectionKind(kind).label,
                                                  "nav": "connections"}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@role_required(message=ADMIN_ONLY)
def connection_edit(request: HtmxHttpRequest, pk: int):
    connection = _get_connection(pk)
    if request.method == "POST":
        form = ConnectionScreenForm(request.POST, instance=connection, kind=connection.kind)
        if form.is_valid():
            connection = form.save()
            log.info("connection %s changed by %s", connection.code, request.user)  # never its values
            messages.success(request, f"Saved {connection.name}.")
            return redirect("connection-detail", pk=connection.pk)
    else:
        form = ConnectionScreenForm(instance=connection, kind=connection.kind)
    return render_page(request, T + "form.html", {"form": form, "connection": connection, "kind": connection.kind,
                                                  "kind_label": connection.get_kind_display(), "nav": "connections"},
                       status=400 if form.errors else 200)


@require_GET
@role_required(message=ADMIN_ONLY)
def connection_detail(request: HtmxHttpRequest, pk: int):
    connection = _get_connection(pk)
    return render_page(request, T + "detail.html", _detail_context(request, connection), fragment="health-section")


@require_http_methods(["GET", "POST"])
@role_required(message=ADMIN_ONLY)
def connection_active(request: HtmxHttpRequest, pk: int):
    """GET asks for confirmation; POST deactivates (or reactivates) the connection."""
    connection = _get_connection(pk)
    if request.method == "GET":
        return render_page(request, T + "confirm_active.html", {"connection": connection, "nav": "connections"})
    connection.active = not connection.active
    connection._change_reason = "reactivated" if connection.active else "deactivated"
    connection.save(update_fields=["active", "updated_at"])
    messages.success(request, f"{connection.name} is {'active again' if connection.active else 'inactive: it accepts and posts nothing'}.")
    return redirect("connection-detail", pk=connection.pk)


# --- test, check, repair -------------------------------------------------------------------------


@require_POST
@role_required(message=ADMIN_ONLY)
def connection_test_view(request: HtmxHttpRequest, pk: int):
    """Test connection, inline: each check's connector tries at most twice with its timeout, so the
    page answers within seconds whatever the vendor does."""
    connection = _get_connection(pk)
    lines = connection_test(connection)
    context = {**_detail_context(request, connection), "test_lines": lines, "test_status": worst(lines),
               "tested_at": timezone.now()}
    return render_page(request, T + "detail.html", context, fragment="test-section")


@require_POST
@role_required(message=ADMIN_ONLY)
def connection_check(request: HtmxHttpRequest, pk: int):
    connection = _get_connection(pk)
    connection_health_refresh(connection)
    response = render_page(request, T + "detail.html", _detail_context(request, connection), fragment="health-section")
    response["HX-Trigger"] = "connectionsChanged"
    return response


@require_POST
@role_required(message=ADMIN_ONLY)
def connection_repair(request: HtmxHttpRequest, pk: int):
    """Repair the Shopify webhook subscriptions, then check the connection again."""
    from ..connectors.base import ConnectorError
    from ..onboarding.subscriptions import shopify_subscriptions_repair

    connection = _get_connection(pk)
    if connection.kind != ConnectionKind.SHOPIFY:
        raise BadRequest("Only a Shopify connection's webhook subscriptions can be repaired.")
    try:
        result = shopify_subscriptions_repair(connection)
        repaired = {"created": result.created, "updated": result.updated, "deleted": result.deleted,
                    "errors": result.errors}
    except ConnectorError as exc:
        repaired = {"created": [], "updated": [], "deleted": [], "errors": [str(exc)]}
    connection_health_refresh(connection)
    context = {**_detail_context(request, connection), "repaired": repaired}
    response = render_page(request, T + "detail.html", context, fragment="health-section")
    response["HX-Trigger"] = "connectionsChanged"
    return response


# --- Shopify install ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(message=ADMIN_ONLY)
def shopify_connect(request: HtmxHttpRequest):
    """Connect a Shopify store by OAuth: the shop domain, then Shopify's authorize page."""
    form = ShopifyConnectForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            start = shopify_oauth.shopify_install_begin(
                session=request.session, user=request.user, shop=form.cleaned_data["shop"],
                redirect_uri=request.build_absolute_uri(reverse("connection-shopify-callback")),
                name=form.cleaned_data["name"])
        except shopify_oauth.InstallRefused as exc:
            error = str(exc)
        else:
            return redirect(start.url)
    return render_page(request, T + "shopify_connect.html", {"form": form, "error": error, "nav": "connections"},
                       status=400 if (error or form.errors) else 200)


@require_GET
@role_required(message=ADMIN_ONLY)
def shopify_callback(request: HtmxHttpRequest):
    try:
        result = shopify_oauth.shopify_install_complete(session=request.session, user=request.user, params=request.GET)
    except shopify_oauth.InstallRefused as exc:
        return render_page(request, T + "shopify_connect.html", {"form": ShopifyConnectForm(), "error": str(exc),
                                                                  "nav": "connections"}, status=400)
    log.info("shopify shop %s connected by %s as %s", result.shop_domain, request.user, result.connection.code)
    return _installed(request, result)


def _installed(request, result):
    connection = result.connection
    connection_health_refresh(connection)
    context = {**_detail_context(request, connection), "installed": result}
    return render_page(request, T + "installed.html", context)


@require_http_methods(["GET", "POST"])
@role_required(message=ADMIN_ONLY)
def shopify_client_credentials(request: HtmxHttpRequest):
    form = ShopifyClientCredentialsForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = shopify_oauth.shopify_connect_client_credentials(
                shop=data["shop"], client_id=data["client_id"], client_secret=data["client_secret"], name=data["name"])
        except shopify_oauth.InstallRefused as exc:
            error = str(exc)
        else:
            return _installed(request, result)
    return render_page(request, T + "shopify_connect.html", {"form": form, "error": error, "client_credentials": True,
                                                              "nav": "connections"},
                       status=400 if (error or form.errors) else 200)


# --- backfill and import by number -------------------------------------------------------------------


@require_POST
@role_required(message=ADMIN_ONLY)
def connection_backfill(request: HtmxHttpRequest, pk: int):
    connection = _get_connection(pk)
    form = BackfillForm(request.POST)
    if not form.is_valid():
        return render_page(request, T + "detail.html", _detail_context(request, connection, backfill_form=form),
                           status=400)
    try:
        with transaction.atomic():
            run = backfill_start(connection=connection, since=form.since_moment(), actor=request.user)
    except BackfillRefused as exc:
        messages.error(request, str(exc))
        return redirect("connection-detail", pk=connection.pk)
    return redirect("connection-backfill-run", pk=run.pk)


@require_GET
@role_required(message=ADMIN_ONLY)
def backfill_run(request: HtmxHttpRequest, pk: int):
    run = get_object_or_404(BackfillRun.objects.select_related("connection"), pk=pk)
    backfill_recount(run)  # orders the flow has posted since the last look
    run.refresh_from_db()
    return render_page(request, T + "backfill_run.html", {"run": run, "connection": run.connection,
                                                          "nav": "connections"}, fragment="run-progress")


@require_POST
@role_required(message=ADMIN_ONLY)
def connection_import_order(request: HtmxHttpRequest, pk: int):
    connection = _get_connection(pk)
    form = OrderNumberForm(request.POST)
    if not form.is_valid():
        return render_page(request, T + "detail.html", _detail_context(request, connection, number_form=form),
                           status=400)
    number = form.cleaned_data["number"]
    try:
        result = order_import_by_number(connection=connection, number=number, actor=request.user)
    except ResyncRefused as exc:
        messages.error(request, str(exc))
        return redirect("connection-detail", pk=connection.pk)
    link = OrderLink.objects.filter(connection=connection, storefront_order_id=result.order_id).first()
    if link is not None:
        messages.success(request, f"Order {number} read from {connection.name}.")
        return redirect("order-detail", pk=link.pk)
    messages.success(request, f"Order {number} read from {connection.name}: it appears here in a moment.")
    return redirect(f"{reverse('orders')}?{urlencode({'q': number.lstrip('#'), 'connection': connection.pk})}")

