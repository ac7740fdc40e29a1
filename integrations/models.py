"""What Ledgerline remembers of what it moved: inbound events, order links and their timeline."""
import json

from django.db import models
from django.utils import timezone

from .secrets import EncryptedCredentialsField


def _pretty(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


class ConnectionKind(models.TextChoices):
    SHOPIFY = "shopify", "Shopify shop"
    COMMERCETOOLS = "commercetools", "commercetools project"
    REST_ERP = "rest_erp", "REST ERP"
    PRIMA = "prima", "Prima"
    INVENTORY_PLANNER = "inventory_planner", "Inventory Planner account"


Platform = ConnectionKind  # storefront kinds were called platforms; the name stays for readers
STOREFRONT_KINDS = (ConnectionKind.SHOPIFY, ConnectionKind.COMMERCETOOLS)
ERP_KINDS = (ConnectionKind.REST_ERP, ConnectionKind.PRIMA)


class ConnectionQuerySet(models.QuerySet):
    def storefronts(self):
        return self.filter(kind__in=STOREFRONT_KINDS)

    def erps(self):
        return self.filter(kind__in=ERP_KINDS)


class Connection(models.Model):
    """One outside system instance: a Shopify shop, a commercetools project, a REST ERP, Prima, an
    Inventory Planner account. Connectors are built from it (integrations.connectors.connector_for);
    blank values fall back to the environment, which bootstraps the first connections."""

    code = models.SlugField(unique=True)
    kind = models.CharField(max_length=20, choices=ConnectionKind.choices)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    base_url = models.URLField(blank=True, help_text="API base URL (blank: the environment's)")
    # Secrets (access tokens, client secrets, webhook secrets, API keys), encrypted at rest.
    credentials = EncryptedCredentialsField(blank=True, default="")
    # Per-connection settings (see integrations.flows.orders.connection_settings for the order keys; also
    # api_version, shop_domain, project_key, scope, company…).
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def platform(self) -> str:
        return self.kind

    @property
    def is_storefront(self) -> bool:
        return self.kind in STOREFRONT_KINDS

    def secret(self, name: str, default: str = "") -> str:
        return (self.credentials or {}).get(name) or default



class InboundEvent(models.Model):
    """A webhook delivery or poll result, stored before anything else happens (the inbox)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="events")
    topic = models.CharField(max_length=80)
    # The vendor's own delivery id (X-Shopify-Webhook-Id, a commercetools message id, or
    # "<order id>@<version>" for a poll result): unique, so a redelivery finds it and stops.
    external_id = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200, blank=True)  # X-Shopify-Event-Id
    triggered_at = models.DateTimeField(null=True, blank=True)  # X-Shopify-Triggered-At
    resource_id = models.CharField(max_length=200, blank=True, db_index=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)  # non-secret headers only
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="uniq_inbound_event_per_connection"),
            # Shopify may send one event again under a new webhook id: its event id says it is the same.
            models.UniqueConstraint(fields=["connection", "event_id"], condition=~models.Q(event_id=""),
                                    name="uniq_inbound_vendor_event_per_connection"),
        ]

    def __str__(self) -> str:
        return f"{self.connection.code} {self.topic} {self.external_id}"

    @property
    def payload_pretty(self) -> str:
        return _pretty(self.payload)


class PollCursor(models.Model):
    """Where a poller stopped: it resumes from here (lastModifiedAt + id as a tie-breaker)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE)
    resource = models.CharField(max_length=40)
    last_modified_at = models.CharField(max_length=40, blank=True)  # vendor timestamp string, exact
    last_id = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_run_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "resource"], name="uniq_poll_cursor")]


class OrderLink(models.Model):
    """One storefront order and the ERP Sales Order it became."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        WAITING_PAYMENT = "waiting_payment", "Waiting for payment"
        POSTING = "posting", "Posting to ERP"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Needs attention"
        CANCELLED = "cancelled", "Cancelled"
        TEST = "test_order", "Test order, not posted"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="orders")
    storefront_order_id = models.CharField(max_length=200)
    order_number = models.CharField(max_length=100, blank=True, db_index=True)
    customer_email = models.CharField(max_length=254, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total_minor = models.BigIntegerField(null=True, blank=True)
    payment_state = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True)
    # The storefront's own updatedAt of the newest payload applied: an older one never overwrites it.
    source_updated_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)  # newest storefront order payload
    erp_order_id = models.CharField(max_length=100, blank=True, db_index=True)
    erp_customer_id = models.CharField(max_length=100, blank=True)
    erp_payload = models.JSONField(default=dict, blank=True)  # what we sent to the ERP
    rounding_difference = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    # The gross total of the document we sent, and the gross total the ERP reported back (minor units).
    posted_total_minor = models.BigIntegerField(null=True, blank=True)
    erp_total_minor = models.BigIntegerField(null=True, blank=True)
    # What the posted sale consisted of (lines, quantities, amounts): a later edit is told by it.
    posted_summary = models.JSONField(default=list, blank=True)
    # Automatic re-posts after a transient failure (ERP outage): how many, and when the next is due.
    auto_retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    posting_started_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_order_id"], name="uniq_order_link"),
        ]

    def __str__(self) -> str:
        return self.order_number or self.storefront_order_id

    def _money_display(self, minor: int | None) -> str:
        from .domain import format_amount, from_minor_units

        if minor is None or not self.currency:
            return "—"
        return f"{format_amount(from_minor_units(minor, self.currency), self.currency)} {self.currency}"

    @property
    def total_display(self) -> str:
        return self._money_display(self.total_minor)

    @property
    def posted_total_display(self) -> str:
        return self._money_display(self.posted_total_minor)

    @property
    def erp_total_display(self) -> str:
        return self._money_display(self.erp_total_minor)

    @property
    def totals_agree(self) -> bool | None:
        """The storefront's total, what we sent and what the ERP booked (None before posting)."""
        if self.posted_total_minor is None:
            return None
        return self.total_minor == self.posted_total_minor == self.erp_total_minor

    @property
    def erp_payload_pretty(self) -> str:
        return _pretty(self.erp_payload)

    @property
    def external_reference(self) -> str:
        """The reference the ERP Sales Order carries: unique per storefront connection."""
        return f"{self.connection.code}:{self.storefront_order_id}"


class OrderEvent(models.Model):
    """The order's timeline: received, waiting for payment, posted, failed, retried."""

    class Kind(models.TextChoices):
        RECEIVED = "received", "Received"
        UPDATED = "updated", "Updated"
        STALE_IGNORED = "stale_ignored", "Older update ignored"
        WAITING_PAYMENT = "waiting_payment", "Waiting for payment"
        POSTING = "posting", "Posting"
        POSTED = "posted", "Posted"
        LINKED_EXISTING = "linked_existing", "Linked existing ERP order"
        CUSTOMER_MATCHED = "customer_matched", "Customer matched"
        CUSTOMER_CREATED = "customer_created", "Customer created"
        FAILED = "failed", "Failed"
        RETRIED = "retried", "Retried"
        CANCELLED = "cancelled", "Cancelled"
        CANCELLED_IN_ERP = "cancelled_in_erp", "Cancelled in the ERP"
        EDITED = "edited", "Edited after posting"
        REFUNDED = "refunded", "Refund in the storefront"
        TEST_ORDER = "test_order", "Test order, not posted"
        TOTAL_MISMATCH = "total_mismatch", "Totals do not add up"
        RETRY_SCHEDULED = "retry_scheduled", "Automatic retry scheduled"

    order = models.ForeignKey(OrderLink, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    message = models.TextField(blank=True)
    event = models.ForeignKey(InboundEvent, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["at", "id"]


class CustomerLink(models.Model):
    """A storefront customer (by id, e-mail or phone) and the ERP account it is posted under, so a
    repeat customer is not searched for again."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="customer_links")
    key = models.CharField(max_length=300)  # "id:<storefront customer id>", "email:<address>", "phone:<number>"
    erp_customer_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "key"], name="uniq_customer_link")]

    def __str__(self) -> str:
        return f"{self.key} → {self.erp_customer_id}"


class OutboundWrite(models.Model):
    """One write to any outside system (ERP sales orders, customers, cancellations, credit memos,
    journals, purchase orders; storefront fulfilments, products…), saved before the call with its
    idempotency key and updated after: a crash in between is visible and the replay is safe."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    system = models.CharField(max_length=20, blank=True)  # the target's kind (rest_erp, prima, shopify…)
    order = models.ForeignKey(OrderLink, on_delete=models.CASCADE, related_name="erp_writes", null=True, blank=True)
    # What the write is about, for every flow: ("order", "42"), ("refund", "…"), ("payout", "…").
    subject_type = models.CharField(max_length=30, blank=True)
    subject_id = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=40)  # create_customer, create_sales_order, cancel_sales_order, …
    # The idempotency key / external reference the target dedupes the write by.
    external_reference = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    response_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="outbound_write_subject_idx")]

    @property
    def idempotency_key(self) -> str:
        return self.external_reference


class SecurityEvent(models.Model):
    """A rejected webhook (bad or missing signature, bad token): who tried, when, why."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=40)
    reason = models.CharField(max_length=200)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=300)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]



# --- Inventory (issue 5): levels last pushed to the storefronts, sync runs, drift samples ---------
from django.conf import settings  # noqa: E402 - kept inside the inventory section


class InventoryLevel(models.Model):
    """One storefront SKU at one storefront location: the ERP ATS and what we last confirmed pushing.

    `storefront_basis` is the number our next compare-and-set compares against (Shopify `available`,
    commercetools `quantityOnStock` at `storefront_version`); `storefront_value` is what shoppers saw.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="inventory_levels")
    storefront_sku = models.CharField(max_length=100)
    storefront_location = models.CharField(max_length=200)
    erp_item_code = models.CharField(max_length=100, blank=True)  # blank for a kit
    erp_warehouse = models.CharField(max_length=50)
    erp_ats = models.IntegerField(default=0)  # latest computed available-to-sell
    pushed_ats = models.IntegerField(null=True, blank=True)  # ATS of the last confirmed push
    storefront_value = models.IntegerField(null=True, blank=True)
    storefront_basis = models.IntegerField(null=True, blank=True)
    storefront_ref = models.CharField(max_length=200, blank=True)  # Shopify inventory item gid / ct entry id
    storefront_version = models.IntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    pushed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["storefront_sku", "storefront_location"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_sku", "storefront_location"],
                                    name="uniq_inventory_level"),
        ]
        indexes = [models.Index(fields=["connection", "erp_item_code"], name="inv_level_item_idx")]

    def __str__(self) -> str:
        return f"{self.storefront_sku} @ {self.storefront_location}"

    @property
    def difference(self) -> int | None:
        """ERP ATS minus what the storefront shows (None when the storefront value is unknown)."""
        return None if self.storefront_value is None else self.erp_ats - self.storefront_value


class InventorySyncRun(models.Model):
    """One push of ERP ATS to one storefront: a full sync or an order-driven push of a few items."""

    class Kind(models.TextChoices):
        FULL = "full", "Full sync"
        ORDER = "order", "Order-driven"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with exceptions"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (quiet hours)"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="inventory_runs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    trigger = models.CharField(max_length=20, default="schedule")  # schedule | manual | order
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_codes = models.JSONField(default=list, blank=True)  # the ERP items of an order-driven push
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    levels_total = models.PositiveIntegerField(default=0)
    levels_changed = models.PositiveIntegerField(default=0)
    levels_pushed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)  # write calls (mutations / update actions)
    read_calls = models.PositiveIntegerField(default=0)  # lookups and re-reads
    conflicts = models.PositiveIntegerField(default=0)  # stale compare-and-set / 409 recovered
    exceptions_raised = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.connection.code}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if not self.is_active else 0
        return min(100, round(100 * self.progress_done / self.progress_total))


class InventoryDriftSample(models.Model):
    """How far the storefront had drifted from the ERP when a full sync looked (for the chart)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(InventorySyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    levels_total = models.PositiveIntegerField(default=0)
    levels_drifted = models.PositiveIntegerField(default=0)
    units_drifted = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]
