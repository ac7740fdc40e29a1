"""factory-boy factories: the one place tests build rows."""
import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from exceptions_queue.models import ExceptionRecord
from integrations.models import InboundEvent, OrderLink, Connection
from mappings.models import DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-1")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection
        django_get_or_create = ("code",)

    code = "shopify"
    kind = factory.LazyAttribute(lambda c: "commercetools" if "commercetools" in c.code else "shopify")
    name = factory.LazyAttribute(lambda c: c.code.title())


class InboundEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundEvent

    connection = factory.SubFactory(ConnectionFactory)
    topic = "orders/paid"
    external_id = factory.Sequence(lambda n: f"wh-{n}")
    payload = factory.LazyFunction(dict)


class OrderLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLink

    connection = factory.SubFactory(ConnectionFactory)
    storefront_order_id = factory.Sequence(lambda n: str(820000 + n))
    order_number = factory.Sequence(lambda n: f"#{1000 + n}")
    customer_email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    currency = "GBP"
    total_minor = 2500


class ExceptionRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExceptionRecord

    type_code = "unknown_sku"
    team = "ecommerce"
    severity = "high"
    key = factory.Sequence(lambda n: f"unknown_sku:order-{n}:TEE-RED-M")
    fingerprint = "unknown_sku:TEE-RED-M"
    title = "SKU TEE-RED-M has no ERP item"
    message = "SKU TEE-RED-M has no ERP item: add it under Mappings → SKUs, then retry."
    sku = "TEE-RED-M"


class SkuMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SkuMapping

    connection = factory.SubFactory(ConnectionFactory)
    storefront_sku = factory.Sequence(lambda n: f"SKU-{n}")
    erp_item_code = factory.Sequence(lambda n: f"ITEM-{n}")


class LocationMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LocationMapping

    connection = factory.SubFactory(ConnectionFactory)
    storefront_location = factory.Sequence(lambda n: f"gid://shopify/Location/{n + 1}")
    erp_warehouse = "MAIN"


class DepotMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DepotMapping

    connection = factory.SubFactory(ConnectionFactory)
    country = ""
    depot_code = "MAIN"


class TaxCodeMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxCodeMapping

    connection = factory.SubFactory(ConnectionFactory)
    rate = "0.2"
    country = ""
    erp_tax_code = "T1"
