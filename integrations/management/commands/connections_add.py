"""Create or update a connection from the command line (secrets read from the environment, never argv)."""
import json
import os

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Create or update a connection. Secrets come from environment variables named with --secret-env "
            "name=VARIABLE (e.g. webhook_secret=SHOPIFY_EU_WEBHOOK_SECRET), so they never appear in shell history.")

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--kind", required=True,
                            choices=["shopify", "commercetools", "rest_erp", "prima", "inventory_planner"])
        parser.add_argument("--name", default="")
        parser.add_argument("--base-url", default="")
        parser.add_argument("--settings", default="{}", help="JSON object of per-connection settings")
        parser.add_argument("--secret-env", action="append", default=[], metavar="NAME=VARIABLE")
        parser.add_argument("--inactive", action="store_true")

    def handle(self, *args, code, kind, name, base_url, settings, secret_env, inactive, **opts):
        from integrations.models import Connection

        try:
            own = json.loads(settings)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--settings is not JSON: {exc}") from None
        if not isinstance(own, dict):
            raise CommandError("--settings must be a JSON object")
        connection = Connection.objects.filter(code=code).first() or Connection(code=code)
        secrets = dict(connection.credentials or {})
        for item in secret_env:
            secret_name, _, variable = item.partition("=")
            if not variable or variable not in os.environ:
                raise CommandError(f"--secret-env {item!r}: environment variable {variable!r} is not set")
            secrets[secret_name] = os.environ[variable]
        connection.kind, connection.name = kind, name or connection.name or code
        connection.base_url = base_url or connection.base_url
        connection.settings = {**(connection.settings or {}), **own}
        connection.credentials, connection.active = secrets, not inactive
        connection.full_clean()
        connection.save()
        self.stdout.write(f"connection {code} ({kind}) saved; secrets set: {', '.join(sorted(secrets)) or 'none'}")
