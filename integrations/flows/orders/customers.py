"""The ERP account an order posts under: remembered repeat customers, guest policies, real conflicts."""
from __future__ import annotations

from django.db import router, transaction

from integrations.connectors.base import CUSTOMER_MATCH_OR_CREATE, AmbiguousCustomer, PermanentError, supports
from integrations.domain import StorefrontOrder
from integrations.inbox.store import insert_rows
from integrations.models import CustomerLink, OrderEvent, OrderLink
from integrations.writes import outbound_write, write_succeeded

from .common import OrderNotReady, timeline_add
from .connection_settings import STOREFRONT_CUSTOMER, OrderSettings, connection_settings
from .document import Problem
from .exception_types import CUSTOMER_CONFLICT
from .statements import rows_where


def customer_keys(order: StorefrontOrder) -> list[str]:
    """The storefront's ways to know a customer again, most specific first."""
    keys = []
    if order.customer_storefront_id:
        keys.append(f"id:{order.customer_storefront_id}")
    if order.customer_email.strip():
        keys.append(f"email:{order.customer_email.strip().lower()}")
    return keys


def _remember_customer(link: OrderLink, keys: list[str], customer_id: str) -> None:
    """One INSERT for the keys not remembered yet; a key a concurrent worker remembered first keeps
    its account (the unique connection + key ignores the second)."""
    if keys:
        using = router.db_for_write(CustomerLink)
        with transaction.atomic(using=using, savepoint=False):  # bulk_create(ignore_conflicts=True), compiled once
            customer_keys_remember([(link.connection_id, keys, customer_id)], using)


def _known_customer(link: OrderLink, keys: list[str]) -> str:
    """The account remembered under the first of these keys that has one ("" for none); keys not
    remembered yet are remembered with it. Asked for every order (a repeat buyer's is answered here):
    a statement compiled once."""
    known = dict(rows_where(CustomerLink, ("key", "erp_customer_id"),
                            {"connection": link.connection_id, "key": list(keys)}, router.db_for_read(CustomerLink)))
    for key in keys:
        if key in known:
            _remember_customer(link, [k for k in keys if k not in known], known[key])
            return known[key]
    return ""


def _customer_reference(link: OrderLink, order: StorefrontOrder, email: str) -> str:
    return f"{link.connection.code}:customer:{order.customer_storefront_id or email}"


def customer_for_batch(link: OrderLink, order: StorefrontOrder, erp) -> tuple[str, dict | None]:
    """For a document going in a batch to an ERP that takes new customers with it (CUSTOMERS_IN_BATCH):
    (the account, None) for a buyer remembered (or a guest, resolved as ensure_customer does), else
    ("", what the ERP needs to match or open the account as it books the order: the same reference,
    fields and match_on as the one-request match-or-create). The batch's answer names the account
    and batch_answers remembers it under the buyer's keys, so no request is spent on a new buyer."""
    keys = customer_keys(order)
    email = order.customer_email.strip().lower()
    if not (email and keys):
        return ensure_customer(link, order, erp), None
    known = _known_customer(link, keys)
    if known:
        return known, None
    return "", {"email": email, "name": order.customer_name or email,
                "external_reference": _customer_reference(link, order, email), "country": order.country,
                "phone": order.customer_phone, "account_type": "customer",
                "match_on": ["external_reference", "email"]}


def customer_keys_remember(rows: list[tuple[int, list[str], str]], using: str) -> None:
    """(connection id, keys, account) for one buyer or the new buyers of a batch: one INSERT, inside
    the caller's transaction; a key a concurrent worker remembered first keeps its account."""
    links = [CustomerLink(connection_id=connection_id, key=key[:300], erp_customer_id=customer_id)
             for connection_id, keys, customer_id in rows if customer_id for key in keys]
    if links:
        insert_rows(links, using, ignore_conflicts=True)


def ensure_customer(link: OrderLink, order: StorefrontOrder, erp) -> str:
    """The ERP account this order posts under. A customer seen before (same storefront customer or
    e-mail) is remembered and not searched for again; guests without an e-mail follow the
    connection's guest policy; several real candidates in the ERP are a conflict for a person."""
    keys = customer_keys(order)
    email = order.customer_email.strip().lower()
    if email and keys:
        known = _known_customer(link, keys)
        if known:
            return known
    if not email:
        return _guest_customer(link, order, erp)
    reference = _customer_reference(link, order, email)
    if supports(erp, CUSTOMER_MATCH_OR_CREATE):  # one request: matched by reference, else e-mail, else created
        customer_id, matched_on = _match_or_create(link, erp, email=email, name=order.customer_name or email,
                                                   reference=reference, country=order.country,
                                                   phone=order.customer_phone,
                                                   match_on=("external_reference", "email"), remember=keys)
        if matched_on == "email":
            timeline_add(link, OrderEvent.Kind.CUSTOMER_MATCHED, f"Matched ERP customer {customer_id} by e-mail {email}")
        return customer_id
    by_ref = erp.find_customers(external_reference=reference)
    if len(by_ref) == 1:
        customer_id = by_ref[0].id
    else:
        candidates = by_ref if len(by_ref) > 1 else erp.find_customers(email=email)
        if len(candidates) > 1:
            raise_customer_conflict(link, email, reference, candidates)
        if candidates:
            customer_id = candidates[0].id
            timeline_add(link, OrderEvent.Kind.CUSTOMER_MATCHED, f"Matched ERP customer {customer_id} by e-mail {email}")
        else:
            customer_id = _create_customer(link, erp, email=email, name=order.customer_name or email,
                                           reference=reference, country=order.country, phone=order.customer_phone)
    _remember_customer(link, keys, customer_id)
    return customer_id


def raise_customer_conflict(link, email, reference, candidates) -> None:
    accounts = sorted({c.id for c in candidates})
    listed = ", ".join(f"{c.id} ({c.name or c.email or 'no name'}"
                       f"{', ref ' + c.external_reference if c.external_reference else ''})"
                       for c in sorted(candidates, key=lambda c: c.id))
    raise OrderNotReady([Problem(
        CUSTOMER_CONFLICT, f"order:{link.pk}:customer", f"customer:{email or reference}",
        f"Customer {email or reference} on order {link} matches {len(accounts)} ERP accounts: {listed}. "
        "Merge them (or correct the e-mail) in the ERP, then retry.",
        {"email": email or reference, "count": len(accounts), "erp_accounts": accounts, "reference": reference},
    )])


def _guest_customer(link: OrderLink, order: StorefrontOrder, erp) -> str:
    """An order without an e-mail: a customer keyed by storefront customer id or phone (policy
    storefront_customer, when the order has one), else the connection's guest account for its
    currency. Unrelated guests are only ever merged into that named guest account."""
    cfg = connection_settings(link.connection)
    code = link.connection.code
    if cfg.guest_policy == STOREFRONT_CUSTOMER and (order.customer_storefront_id or order.customer_phone):
        key = f"id:{order.customer_storefront_id}" if order.customer_storefront_id else f"phone:{order.customer_phone}"
        known = CustomerLink.objects.filter(connection=link.connection, key=key).values_list(
            "erp_customer_id", flat=True).first()
        if known:
            return known
        reference = f"{code}:customer:{order.customer_storefront_id}" if order.customer_storefront_id \
            else f"{code}:phone:{order.customer_phone}"
        found = erp.find_customers(external_reference=reference)
        if len(found) > 1:
            raise_customer_conflict(link, "", reference, found)
        if found:
            customer_id = found[0].id
        elif order.customer_phone:
            customer_id = _create_customer(link, erp, email="", phone=order.customer_phone, reference=reference,
                                           name=order.customer_name or order.customer_phone, country=order.country)
        else:
            customer_id = ""
        if customer_id:
            _remember_customer(link, [key], customer_id)
            return customer_id
    return _guest_account(link, order, erp, cfg)


def _guest_account(link: OrderLink, order: StorefrontOrder, erp, cfg: OrderSettings) -> str:
    configured = cfg.guest_accounts.get(order.currency) or cfg.guest_accounts.get("*")
    if configured:
        return configured
    key = f"guest:{order.currency}"
    known = CustomerLink.objects.filter(connection=link.connection, key=key).values_list(
        "erp_customer_id", flat=True).first()
    if known:
        return known
    reference = f"{link.connection.code}:guest:{order.currency}"
    name = f"{link.connection.name} guest sales ({order.currency})"
    if supports(erp, CUSTOMER_MATCH_OR_CREATE):
        customer_id, _ = _match_or_create(link, erp, email="", name=name, reference=reference, country=order.country,
                                          guest=True, match_on=("external_reference",), remember=[key])
    else:
        found = erp.find_customers(external_reference=reference)
        customer_id = found[0].id if found else _create_customer(
            link, erp, email="", name=name, reference=reference, country=order.country, guest=True)
        _remember_customer(link, [key], customer_id)
    timeline_add(link, OrderEvent.Kind.CUSTOMER_MATCHED,
              f"Guest order without an e-mail: posted under the guest account {customer_id} ({order.currency})")
    return customer_id


def _match_or_create(link: OrderLink, erp, *, email: str, name: str, reference: str, country: str,
                     match_on: tuple[str, ...], remember: list[str], phone: str = "",
                     guest: bool = False) -> tuple[str, str]:
    """The ERP's match-or-create, through the outbound-write log (it may create an account); several
    accounts for one field are a customer conflict for a person. The write is marked succeeded in the
    transaction that remembers the account under the keys in `remember` and adds its timeline entry
    (one commit, not three)."""
    try:
        with outbound_write(action="create_customer", idempotency_key=reference, order=link,
                            system=getattr(erp, "system", ""), finish=False) as write:
            customer, matched_on = erp.match_or_create_customer(
                email=email, name=name, external_reference=reference, country=country, phone=phone, guest=guest,
                match_on=match_on)
            write.response_id = customer.id
    except AmbiguousCustomer as exc:
        raise_customer_conflict(link, email, reference, exc.candidates)
    with transaction.atomic(using=router.db_for_write(CustomerLink)):
        write_succeeded(write.pk, write.response_id)
        _remember_customer(link, remember, customer.id)
        if not matched_on:
            timeline_add(link, OrderEvent.Kind.CUSTOMER_CREATED, f"Created ERP {'guest account' if guest else 'customer'}"
                                                                 f" {customer.id} for {email or phone or name}")
    return customer.id, matched_on


def _create_customer(link: OrderLink, erp, *, email: str, name: str, reference: str, country: str,
                     phone: str = "", guest: bool = False) -> str:
    try:
        with outbound_write(action="create_customer", idempotency_key=reference, order=link,
                            system=getattr(erp, "system", "")) as write:
            customer = erp.create_customer(email=email, name=name, external_reference=reference, country=country,
                                           phone=phone, guest=guest)
            write.response_id = customer.id
    except PermanentError as exc:
        if getattr(exc, "status", None) == 409:
            again = erp.find_customers(external_reference=reference)  # created by a concurrent worker
            if again:
                return again[0].id
        raise
    timeline_add(link, OrderEvent.Kind.CUSTOMER_CREATED,
              f"Created ERP {'guest account' if guest else 'customer'} {customer.id} for {email or phone or name}")
    return customer.id
