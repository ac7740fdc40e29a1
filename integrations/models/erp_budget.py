"""What several task clusters share about one ERP: its request budget and the sales orders waiting
for the next batch request."""
from django.db import models
from django.utils import timezone

from .orders import OrderLink
from .writes import OutboundWrite


class ErpBudget(models.Model):
    """The ERP's request budget in the database (ERP_BUDGET=postgres): one row per ERP endpoint whose
    next free request slot every worker on every host books by one atomic UPDATE."""

    endpoint = models.CharField(max_length=200, unique=True)
    next_slot = models.FloatField(default=0)  # seconds since the epoch, the database's own clock

    def __str__(self) -> str:
        return self.endpoint


class ReadySalesOrder(models.Model):
    """A checked Sales Order whose attempt row is saved, waiting to go out in the ERP's next batch
    request. A flusher claims up to a batch of them by a conditional update (batch = its token), so
    two flushers never send one twice; a claimed row whose flusher died is re-posted by the sweep
    after the order's claim lease (the ERP is then asked first, by external reference)."""

    order = models.OneToOneField(OrderLink, on_delete=models.CASCADE, related_name="+")
    write = models.ForeignKey(OutboundWrite, on_delete=models.CASCADE, related_name="+")
    endpoint = models.CharField(max_length=200)  # which ERP it waits for (the flow's erp_facts_key)
    request = models.JSONField()  # the ErpSalesOrderRequest, field by field
    details = models.JSONField(default=dict)  # customer, rounding, breakdown, summary: what posting records
    ready_at = models.DateTimeField(default=timezone.now)
    batch = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["endpoint", "batch", "id"], name="ready_sales_order_batch_idx")]
