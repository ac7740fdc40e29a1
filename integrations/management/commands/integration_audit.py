"""`manage.py integration_audit [--format md|html] [--output FILE]`: the audit of the connected estate
(config/audit.py) from Ledgerline's own records, as Markdown (the default) or a standalone HTML report."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string

from config.audit import audit_markdown, integration_audit


class Command(BaseCommand):
    help = "Audit the connected estate: mapping gaps, scopes, subscriptions, API versions, rates, cursors, SLAs."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["md", "html"], default="md")
        parser.add_argument("--output", help="write the report to this file instead of standard output")

    def handle(self, *args, **options):
        audit = integration_audit()
        base = getattr(settings, "SITE_URL", "").rstrip("/")
        if options["format"] == "html":
            body = render_to_string("ops/audit_report.html", {"audit": audit, "base": base})
        else:
            body = audit_markdown(audit, base=base)
        if options["output"]:
            path = Path(options["output"])
            try:
                path.write_text(body, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc}") from None
            counts = ", ".join(f"{n} {s}" for s, n in audit["counts"].items() if n) or "nothing found"
            self.stdout.write(f"Wrote the integration audit to {path} ({counts}).")
        else:
            self.stdout.write(body, ending="")
