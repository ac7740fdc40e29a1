"""Where each commercetools resource's Subscription messages stand, so they are applied in order."""
from django.db import models

from .connections import Connection


class CommercetoolsResourceSequence(models.Model):
    """One commercetools resource (an order) of one connection: the last message applied by its
    sequenceNumber, the newest resource version applied in full (a message older than either changes
    nothing), and since when a later message waits for a missing one (integrations.inbox.ct_ordering)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="ct_sequences")
    resource_type = models.CharField(max_length=40, default="order")  # the Reference typeId
    resource_id = models.CharField(max_length=200)
    applied_sequence = models.PositiveBigIntegerField(default=0)
    covered_version = models.PositiveBigIntegerField(default=0)
    waiting_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "resource_type", "resource_id"],
                                    name="uniq_ct_resource_sequence"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.resource_type} {self.resource_id} @{self.applied_sequence}"
