"""Serve the vendor sandboxes (Shopify, commercetools, REST ERP, Prima) over HTTP on loopback."""
import time

from django.core.management.base import BaseCommand

from integrations.sandbox.server import start_sandbox


class Command(BaseCommand):
    help = "Serve the sandbox storefronts and ERPs on loopback (what the demo and tests talk to)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--erp-rate-limit", type=float, default=50, help="ERP requests per second (0 = none)")
        parser.add_argument("--erp-lock-probability", type=float, default=0.0)
        parser.add_argument("--webhook-target", default="", help="where the Shopify sandbox delivers webhooks")
        parser.add_argument("--seed", action="store_true", help="load the demo catalogue, depots and channels")
        parser.add_argument("--ct-client-scopes", default="",
                            help="scopes the commercetools API client holds, space-separated "
                                 "(default: manage_project:<project>), to try least-privilege credentials")
        parser.add_argument("--shopify-scopes", default="",
                            help="access scopes the Shopify token holds, comma-separated (default: the demo app's)")

    def handle(self, *args, **opts):
        server = start_sandbox(
            opts["host"], opts["port"], erp_rate_limit=opts["erp_rate_limit"],
            erp_lock_probability=opts["erp_lock_probability"], shopify_webhook_target=opts["webhook_target"],
            ct_client_scopes=opts["ct_client_scopes"],
            **({"shopify_access_scopes": [s.strip() for s in opts["shopify_scopes"].split(",") if s.strip()]}
               if opts["shopify_scopes"] else {}),
        )
        if opts["seed"]:
            for app in server.apps.values():
                if hasattr(app, "seed_demo"):
                    app.seed_demo()
        self.stdout.write(f"Sandbox systems on {server.url}: {', '.join(server.apps)} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.shutdown()
