"""The item master as Ledgerline last read it from the ERP, where each item stands on each storefront,
and the runs that pull and publish it.

A CatalogItem is one ERP item (one SKU), keyed by its connection and the ERP's stable item id, so a
code renamed in the ERP updates the same row. Its `data` is the MasterItem as JSON and its
`fingerprint` a hash of that data: reading the same item again changes nothing. A CatalogPublication
is that item on one storefront: waiting (something is missing: `missing` lists what), ready (complete,
waiting in the publish queue for a release), live, retired or failed; `published_fingerprint` is the
fingerprint last pushed, so only changed items are pushed again. A CatalogRun is one pull or publish
run with its progress; a bulk run saves the vendor's job handle before it waits, so it can resume."""
from django.db import models
from django.db.models import Q
from django.utils import timezone


class CatalogItem(models.Model):
    """One ERP item as the item master last stated it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    erp_connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE,
                                       related_name="catalog_items", verbose_name="ERP")
    item_id = models.CharField("ERP item id", max_length=100)  # stable across a change of code
    code = models.CharField("item code", max_length=100, db_index=True)
    product_key = models.CharField("product key", max_length=100, blank=True, db_index=True)
    name = models.CharField("name", max_length=255, blank=True)
    status = models.CharField("status", max_length=20, choices=Status.choices, default=Status.ACTIVE)
    data = models.JSONField("item master data", default=dict, blank=True)  # the MasterItem as JSON
    fingerprint = models.CharField("fingerprint", max_length=64, blank=True)
    erp_updated_at = models.DateTimeField("changed in the ERP", null=True, blank=True)
    first_seen = models.DateTimeField("first seen", default=timezone.now)
    updated_at = models.DateTimeField("stored", auto_now=True)

    class Meta:
        ordering = ["code", "pk"]
        verbose_name = "catalogue item"
        constraints = [models.UniqueConstraint(fields=["erp_connection", "item_id"], name="catalog_item_uniq_erp_id")]
        indexes = [models.Index(fields=["erp_connection", "product_key"], name="catalog_item_erp_key")]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})" if self.name else self.code

    @property
    def key(self) -> str:
        """The product this item is a variant of (its own code when the ERP names no product group)."""
        return self.product_key or self.code


class CatalogPublication(models.Model):
    """One item on one storefront connection."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for data"
        READY = "ready", "Ready to publish"
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired (unpublished)"
        FAILED = "failed", "Failed"

    item = models.ForeignKey(CatalogItem, on_delete=models.CASCADE, related_name="publications")
    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE,
                                   related_name="catalog_publications", verbose_name="storefront")
    state = models.CharField("state", max_length=20, choices=State.choices, default=State.WAITING)
    missing = models.JSONField("missing", default=list, blank=True)  # what the gate still waits for
    sku = models.CharField("storefront SKU", max_length=100, blank=True)  # as last pushed
    storefront_product_id = models.CharField("storefront product", max_length=200, blank=True)
    storefront_variant_id = models.CharField("storefront variant", max_length=200, blank=True)
    published_fingerprint = models.CharField("fingerprint pushed", max_length=64, blank=True)
    # The item's data as last pushed: a variant already on sale that the gate holds back again (its ERP
    # change is incomplete) is sent as it was, never with the incomplete data, when its product is pushed.
    pushed_data = models.JSONField("data as last pushed", null=True, blank=True)
    last_pushed_at = models.DateTimeField("last pushed", null=True, blank=True)
    last_error = models.TextField("last error", blank=True)
    attempts = models.PositiveIntegerField("failed attempts", default=0)
    # A manual-release storefront: set by release(), so the next publish pushes this one.
    released_at = models.DateTimeField("released", null=True, blank=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["item__code", "connection_id"]
        verbose_name = "catalogue publication"
        constraints = [models.UniqueConstraint(fields=["item", "connection"], name="catalog_pub_uniq_item_conn")]
        indexes = [models.Index(fields=["connection", "state"], name="catalog_pub_conn_state")]

    def __str__(self) -> str:
        return f"{self.item_id} on {self.connection_id}: {self.state}"


class CatalogRun(models.Model):
    """One pull of the item master from an ERP, or one publish to a storefront, with its progress."""

    class Kind(models.TextChoices):
        PULL = "pull", "Pull from the ERP"
        PUBLISH = "publish", "Publish to the storefront"
        BULK = "bulk", "Bulk publish to the storefront"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for the vendor's bulk job"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (State.RUNNING, State.WAITING)

    kind = models.CharField("kind", max_length=20, choices=Kind.choices)
    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, related_name="catalog_runs")
    state = models.CharField("state", max_length=20, choices=State.choices, default=State.RUNNING)
    cursor = models.CharField("cursor", max_length=200, blank=True)  # pull: the ERP cursor reached
    total = models.PositiveIntegerField("total", default=0)
    done = models.PositiveIntegerField("done", default=0)
    failed = models.PositiveIntegerField("failed", default=0)
    bulk_handle = models.CharField("bulk job", max_length=200, blank=True)
    # publish: the product keys this run pushes (kept so a resumed run pushes the same set), and results.
    keys = models.JSONField("product keys", default=list, blank=True)
    summary = models.JSONField("summary", default=dict, blank=True)
    started_at = models.DateTimeField("started", default=timezone.now)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    error = models.TextField("error", blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "catalogue run"
        constraints = [
            # One active run per connection and kind: a second one is refused, the first is resumed.
            models.UniqueConstraint(fields=["connection", "kind"], condition=Q(state__in=("running", "waiting")),
                                    name="catalog_run_one_active"),
        ]
        indexes = [models.Index(fields=["connection", "kind", "-started_at"], name="catalog_run_conn_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.connection_id} {self.state} {self.done}/{self.total}"

    @property
    def is_running(self) -> bool:
        return self.state in self.ACTIVE
