"""`manage.py demo`: migrate, seed, start the sandbox systems, the task cluster and the web server,
then send demo orders from both storefronts through the real webhook and polling paths."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from integrations.servers import task_cluster, web_server

DEMO_PASSWORDS = {"ops": "ops-demo-pass", "finance": "finance-demo-pass", "ecommerce": "ecommerce-demo-pass",
                  "admin": "admin-demo-pass"}


class Command(BaseCommand):
    help = "Run Ledgerline with its sync flows against the bundled sandbox systems, seeded with demo data."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8100)
        parser.add_argument("--keep-data", action="store_true", help="keep the previous demo database")
        parser.add_argument("--no-orders", action="store_true", help="do not send the demo orders")
        parser.add_argument("--exit-after-seed", action="store_true", help="stop once the demo orders are in (for checks)")

    def handle(self, *args, **opts):
        self._reset_database_if_default(opts["keep_data"])
        call_command("demo_seed", verbosity=0)
        from integrations.demo import demo_orders_send

        users = {role: (role, password) for role, password in DEMO_PASSWORDS.items()}

        web = f"http://127.0.0.1:{opts['port']}"
        sandbox_url = f"http://127.0.0.1:{opts['sandbox_port']}"
        from integrations.sandbox.server import start_sandbox

        sandbox = start_sandbox(
            "127.0.0.1", opts["sandbox_port"], erp_rate_limit=50,
            shopify_webhook_target=f"{web}/webhooks/shopify/shopify/",
            shopify_webhook_secret=settings.SHOPIFY["webhook_secret"],
            shopify_eu_webhook_target=f"{web}/webhooks/shopify/shopify-eu/",
        )
        for app in sandbox.apps.values():
            if hasattr(app, "seed_demo"):
                app.seed_demo()
        # The gift set is a kit in Ledgerline's SKU mapping (a T-shirt and two mugs in the ERP).
        sandbox.apps["/shopify"].add_product("Gift set", variants=[{"sku": "GIFT-SET", "price": "29.00"}])
        from integrations.demo import demo_connections_seed

        demo_connections_seed(sandbox_url)  # the EU shop's connection points at its sandbox

        env = {"ERP_CLIENT_RATE_LIMIT": "48", **os.environ, "LEDGERLINE_NO_BOOTSTRAP": "1", "SANDBOX_URL": sandbox_url,
               "DJANGO_SETTINGS_MODULE": "config.settings", "LEDGERLINE_MODE": "demo"}
        children = [task_cluster(env), web_server(opts["port"], env)]
        try:
            self._wait_for(f"{web}/health/")
            if not opts["no_orders"]:
                summary = demo_orders_send(sandbox)
                self.stdout.write(summary)
            self._print_welcome(web, sandbox.url, users)
            if opts["exit_after_seed"]:
                time.sleep(8)
                return
            while all(child.poll() is None for child in children):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
            sandbox.shutdown()

    def _reset_database_if_default(self, keep: bool) -> None:
        """The sandbox systems start empty on every run, so the demo database does too (unless --keep-data)."""
        db = settings.DATABASES["default"]
        if keep or db["ENGINE"] != "config.sqlite_queue" or "DATABASE_URL" in os.environ:
            return
        path = Path(db["NAME"])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    def _wait_for(self, url: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the web server did not answer on {url} within {timeout:.0f}s")

    def _print_welcome(self, web: str, sandbox: str, users: dict) -> None:
        lines = [
            "",
            "Ledgerline is running.",
            f"  Open {web}/ and sign in as one of:",
            *[f"    {role:<10} user {name:<10} password {pw}" for role, (name, pw) in users.items()],
            f"  Sandbox systems (Shopify, commercetools, ERP, Prima): {sandbox}",
            "  Task cluster (django-q2) is processing events; the commercetools poller runs every minute.",
            "  Ctrl-C stops everything.",
            "",
        ]
        self.stdout.write("\n".join(lines))
