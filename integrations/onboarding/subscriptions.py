"""The webhook subscriptions a Shopify connection needs (each enabled flow's topics, delivered as JSON
to that connection's endpoint `/webhooks/shopify/<code>/` on SITE_URL), compared with what Shopify
holds, and repaired: missing ones created, wrong ones (another address or format) updated, extra ones
deleted. Repairing twice changes nothing the second time."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from integrations.connectors import connector_for
from integrations.connectors.base import ConnectorError
from integrations.connectors.shopify import app as shopify_app
from integrations.connectors.shopify.app import WebhookSubscription

from .requirements import enabled_flows, needed_topics

log = logging.getLogger("ledgerline.onboarding")

FORMAT = "JSON"


def webhook_callback_url(connection) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("webhook-shopify", args=[connection.code])


@dataclass(frozen=True)
class WrongSubscription:
    subscription: WebhookSubscription
    problem: str  # "sends to <uri>, not <ours>" / "sends XML, not JSON"


@dataclass
class SubscriptionReport:
    callback_url: str
    ok: list[WebhookSubscription] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # topics
    wrong: list[WrongSubscription] = field(default_factory=list)
    extra: list[WebhookSubscription] = field(default_factory=list)  # topics no enabled flow needs, or duplicates

    @property
    def in_order(self) -> bool:
        return not (self.missing or self.wrong or self.extra)


@dataclass
class RepairResult:
    created: list[str] = field(default_factory=list)  # topics
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what Shopify refused, in its words
    report: SubscriptionReport | None = None  # the state after the repair


def _problem(subscription: WebhookSubscription, url: str) -> str:
    problems = []
    if subscription.uri != url:
        problems.append(f"sends to {subscription.uri or '(nowhere)'}, not {url}")
    if subscription.format != FORMAT:
        problems.append(f"sends {subscription.format or 'an unknown format'}, not {FORMAT}")
    return "; ".join(problems)


def compare_subscriptions(subscriptions: list[WebhookSubscription], topics, url: str) -> SubscriptionReport:
    report = SubscriptionReport(callback_url=url)
    by_topic: dict[str, list[WebhookSubscription]] = {}
    for subscription in subscriptions:
        by_topic.setdefault(subscription.topic, []).append(subscription)
    for topic in topics:
        found = by_topic.pop(topic, [])
        if not found:
            report.missing.append(topic)
            continue
        found.sort(key=lambda s: bool(_problem(s, url)))  # a right one first: it is the one kept
        keep, *duplicates = found
        problem = _problem(keep, url)
        if problem:
            report.wrong.append(WrongSubscription(keep, problem))
        else:
            report.ok.append(keep)
        report.extra.extend(duplicates)
    for rest in by_topic.values():
        report.extra.extend(rest)
    return report


def shopify_subscriptions_check(connection, client=None) -> SubscriptionReport:
    client = client or connector_for(connection)
    return compare_subscriptions(shopify_app.webhook_subscriptions(client), needed_topics(enabled_flows(connection)),
                                 webhook_callback_url(connection))


def shopify_subscriptions_repair(connection, client=None) -> RepairResult:
    """Make Shopify hold exactly the subscriptions the connection's flows need (safe to run again:
    each change is decided from what Shopify holds now)."""
    client = client or connector_for(connection)
    report = shopify_subscriptions_check(connection, client)
    result = RepairResult()
    url = report.callback_url
    for topic in report.missing:
        try:
            shopify_app.create_webhook_subscription(client, topic, url, format=FORMAT)
            result.created.append(topic)
        except ConnectorError as exc:
            result.errors.append(str(exc))
    for wrong in report.wrong:
        try:
            shopify_app.update_webhook_subscription(client, wrong.subscription.id, url, format=FORMAT)
            result.updated.append(wrong.subscription.topic)
        except ConnectorError as exc:
            result.errors.append(str(exc))
    for extra in report.extra:
        try:
            shopify_app.delete_webhook_subscription(client, extra.id)
            result.deleted.append(extra.topic)
        except ConnectorError as exc:
            result.errors.append(str(exc))
    if result.created or result.updated or result.deleted:
        log.info("shopify: repaired subscriptions of %s: created %s, updated %s, deleted %s", connection.code,
                 result.created, result.updated, result.deleted)
    result.report = shopify_subscriptions_check(connection, client)
    return result
