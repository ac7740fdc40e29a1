"""`manage.py sandbox` serves the stand-ins with the credentials' scopes asked for, so least-privilege
set-ups can be tried against a standalone sandbox too."""
import pytest
import requests
from django.core.management import call_command

from integrations.management.commands import sandbox as sandbox_command


def run_sandbox_command(monkeypatch, probe, **options):
    """Run the command; `probe(url)` runs against the live server, then the command is stopped."""
    started = {}
    real_start = sandbox_command.start_sandbox

    def start(*args, **kw):
        started["server"] = real_start(*args, **kw)
        return started["server"]

    def sleep(_seconds):
        try:
            probe(started["server"].url)
        finally:
            raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_command, "start_sandbox", start)
    monkeypatch.setattr(sandbox_command.time, "sleep", sleep)
    call_command("sandbox", port=0, **options)


def ct_token(url, scope):
    return requests.post(f"{url}/commercetools/auth/oauth/token", auth=("sandbox-client", "sandbox-secret"),
                         data={"grant_type": "client_credentials", "scope": scope}, timeout=5)


def test_a_least_privilege_commercetools_client_cannot_get_a_wider_token(monkeypatch):
    answers = {}

    def probe(url):
        answers["narrow"] = ct_token(url, "view_orders:ledgerline-demo")
        answers["wide"] = ct_token(url, "manage_project:ledgerline-demo")

    run_sandbox_command(monkeypatch, probe, ct_client_scopes="view_orders:ledgerline-demo")
    assert answers["narrow"].status_code == 200
    assert answers["wide"].status_code == 400 and answers["wide"].json()["error"] == "invalid_scope"


@pytest.mark.parametrize("scopes, denied", [("", False), ("read_products", True)])
def test_the_shopify_token_holds_only_the_scopes_asked_for(monkeypatch, scopes, denied):
    answers = {}

    def probe(url):
        answers["orders"] = requests.post(
            f"{url}/shopify/admin/api/2026-04/graphql.json", headers={"X-Shopify-Access-Token": "shpat_sandbox_token"},
            json={"query": "{ orders(first: 1) { nodes { id } } }"}, timeout=5)

    run_sandbox_command(monkeypatch, probe, shopify_scopes=scopes)
    body = answers["orders"].json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert ("ACCESS_DENIED" in codes) is denied
