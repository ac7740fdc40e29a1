"""Safe by default: no published secret in production, `check --deploy` passes, the API docs need a
login and work offline, sign-in is throttled, and /health/ tells strangers nothing but ok / error."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "q1zmY4-LDXBHmOvbXIRusRDcjcx7ESHSrZVlZjsS7nE="  # a test key, only for these subprocesses
PRODUCTION_ENV = {
    "SECRET_KEY": "pN4v8-zJq0b2W7cXyR1tLmK6sD9fG3hA5eU_oI2wQzXcVbNmLkJhGfDsAp",
    "LEDGERLINE_CONNECTION_KEYS": FERNET_KEY,
    "ALLOWED_HOSTS": "ledgerline.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://ledgerline.example.com",
    "SHOPIFY_ACCESS_TOKEN": "shpat_from_the_vault",
    "SHOPIFY_WEBHOOK_SECRET": "webhook-secret-from-the-vault",
    "CT_CLIENT_SECRET": "ct-secret-from-the-vault",
    "CT_SUBSCRIPTION_TOKEN": "ct-token-from-the-vault",
    "ERP_API_KEY": "erp-key-from-the-vault",
}
SECRETS = ["SECRET_KEY", "LEDGERLINE_CONNECTION_KEYS", "SHOPIFY_ACCESS_TOKEN", "SHOPIFY_WEBHOOK_SECRET",
           "CT_CLIENT_SECRET", "CT_SUBSCRIPTION_TOKEN", "ERP_API_KEY"]


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    """manage.py in a clean environment: nothing of this shell, no .env file, no LEDGERLINE_MODE."""
    clean = {"PATH": "/usr/bin:/bin", "LEDGERLINE_NO_BOOTSTRAP": "1", "LEDGERLINE_ENV_FILE": "/dev/null", **env}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=clean, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


# --- No usable default secrets ----------------------------------------------------------------------

def test_a_production_start_with_no_environment_stops_and_names_every_missing_secret():
    result = manage("check", env={})
    assert result.returncode != 0
    assert "production mode" in result.stderr and "Traceback" not in result.stderr
    for name in SECRETS + ["ALLOWED_HOSTS"]:
        assert name in result.stderr


def test_a_production_start_with_one_secret_missing_names_that_one():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SHOPIFY_WEBHOOK_SECRET"}
    result = manage("check", env=env)
    assert result.returncode != 0
    missing = re.search(r"not set: ([A-Z_, ]+)\.", result.stderr).group(1)
    assert missing == "SHOPIFY_WEBHOOK_SECRET"


def test_a_connection_key_that_is_not_a_fernet_key_stops_the_start():
    result = manage("check", env={**PRODUCTION_ENV, "LEDGERLINE_CONNECTION_KEYS": "not-a-key"})
    assert result.returncode != 0 and "not a Fernet key" in result.stderr


def test_a_prima_erp_needs_no_erp_api_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "ERP_API_KEY"}
    assert manage("check", env={**env, "ERP_KIND": "prima"}).returncode == 0


def test_the_demo_commands_need_no_environment():
    result = manage("demo", "--help", env={})
    assert result.returncode == 0, result.stderr


def test_check_deploy_passes_for_a_production_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_about_the_demo_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"LEDGERLINE_MODE": "demo"})
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr and "SESSION_COOKIE_SECURE" in result.stderr


def _production_settings(**extra) -> dict:
    code = ("import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k, None) for k in "
            "['SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_HTTPONLY', "
            "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', 'DEBUG', 'ALLOWED_HOSTS', "
            "'CSRF_TRUSTED_ORIGINS']}))")
    result = manage("shell", "-c", code, env={**PRODUCTION_ENV, **extra})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_and_http_only_and_the_proxy_header_is_trusted_only_when_set():
    plain = _production_settings()
    assert plain["SESSION_COOKIE_SECURE"] and plain["SESSION_COOKIE_HTTPONLY"]
    assert plain["CSRF_COOKIE_SECURE"] and plain["CSRF_COOKIE_HTTPONLY"]
    assert plain["SECURE_SSL_REDIRECT"] and plain["SECURE_HSTS_SECONDS"] >= 31536000 and not plain["DEBUG"]
    assert plain["SECURE_PROXY_SSL_HEADER"] is None
    assert plain["ALLOWED_HOSTS"] == ["ledgerline.example.com"]
    assert plain["CSRF_TRUSTED_ORIGINS"] == ["https://ledgerline.example.com"]
    proxied = _production_settings(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


# --- API schema and docs ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_api_schema_and_docs_need_a_login(client):
    assert client.get("/api/schema/").status_code in (401, 403)
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_an_api_token_reads_the_schema(client, ops_user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=ops_user)
    response = client.get("/api/schema/", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 200 and b"/exceptions/api/exceptions/" in response.content


@pytest.mark.django_db
def test_the_api_docs_work_offline(client, ops_user):
    client.force_login(ops_user)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the docs page loads something from another host"
    assert not re.search(r"""url\s*:\s*["'](https?:)?//""", html)
    assets = re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/api/schema/").status_code == 200


def test_schema_generation_emits_no_warnings(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn turns any drf-spectacular warning (an enum naming collision, say) into an error
    call_command("spectacular", "--file", str(tmp_path / "schema.yml"), "--fail-on-warn", "--validate")
    schema = (tmp_path / "schema.yml").read_text()
    assert "ExceptionStatusEnum" in schema and "BulkJobStatusEnum" in schema


# --- Login throttling --------------------------------------------------------------------------------

def _sign_in(client, username, password, address="10.1.2.3"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_repeated_failed_sign_ins_are_refused_for_a_while_and_logged(client, ops_user, settings, caplog):
    caplog.set_level("WARNING", logger="ledgerline.security")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _sign_in(client, ops_user.username, "wrong")
        assert response.status_code == 200 and b"did not match" in response.content
    locked = _sign_in(client, ops_user.username, "wrong")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content and b"15 minutes" in locked.content
    # even the right password is refused now, with the same page
    again = _sign_in(client, ops_user.username, "pw-for-tests-1")
    assert again.status_code == 429 and b"Too many failed sign-in attempts" in again.content
    assert "_auth_user_id" not in client.session
    lines = [r.getMessage() for r in caplog.records if r.name == "ledgerline.security"]
    assert any("locked out" in line and ops_user.username in line and "10.1.2.3" in line for line in lines)
    assert not any("wrong" in line or "pw-for-tests-1" in line for line in lines)


@pytest.mark.django_db
def test_a_lockout_is_per_username_and_address(client, ops_user, finance_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, ops_user.username, "wrong")
    assert _sign_in(client, ops_user.username, "pw-for-tests-1").status_code == 429
    # another user from the same address, and the same user from elsewhere, still sign in
    assert _sign_in(client, finance_user.username, "pw-for-tests-1").status_code == 302
    client.logout()
    assert _sign_in(client, ops_user.username, "pw-for-tests-1", address="10.9.9.9").status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_forgets_earlier_failures(client, ops_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, ops_user.username, "wrong")
    assert _sign_in(client, ops_user.username, "pw-for-tests-1").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, ops_user.username, "wrong").status_code == 200


@pytest.mark.django_db
def test_the_lockout_counts_the_address_the_trusted_proxy_saw(client, ops_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": ops_user.username, "password": "wrong"},
                    REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="forged, 203.0.113.7")
    # the same proxy, another client: not locked out
    response = client.post("/accounts/login/", {"username": ops_user.username, "password": "pw-for-tests-1"},
                           REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert response.status_code == 302


# --- Health ------------------------------------------------------------------------------------------

DB_ERROR = 'connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL: role "ledgerline" does not exist'


@pytest.fixture
def database_down(monkeypatch):
    """The health check's query fails as PostgreSQL's would; sessions and users still load."""
    real_cursor = connection.cursor

    class Cursor:
        def __init__(self):
            self._real = real_cursor()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._real.close()
            return False

        def execute(self, sql, params=None):
            if sql == "SELECT 1":
                raise OperationalError(DB_ERROR)
            return self._real.execute(sql, params)

        def __getattr__(self, name):
            return getattr(self._real, name)

    monkeypatch.setattr(connection, "cursor", Cursor)


@pytest.mark.django_db
def test_health_tells_anyone_it_is_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_tells_an_anonymous_caller_only_that_it_is_unhealthy(client, database_down):
    response = client.get("/health/")
    assert response.status_code == 503 and response.json() == {"status": "error"}
    assert b"db.internal" not in response.content and b"5432" not in response.content


@pytest.mark.django_db
def test_health_gives_a_signed_in_non_staff_user_no_details_either(client, ops_user, database_down):
    client.force_login(ops_user)
    assert client.get("/health/").json() == {"status": "error"}


@pytest.mark.django_db
def test_health_gives_staff_the_details(client, database_down):
    staff = UserFactory(username="sam-staff", is_staff=True)
    client.force_login(staff)
    response = client.get("/health/")
    assert response.status_code == 503 and response.json() == {"status": "error", "database": DB_ERROR}


# --- The README tells the truth ------------------------------------------------------------------------

README = (ROOT / "README.md").read_text()


def test_the_readme_api_paths_exist_and_the_old_one_does_not():
    from django.urls import Resolver404, resolve

    paths = set(re.findall(r"`(?:GET|POST) (/[a-z/<>_]+/)`", README))
    assert "/exceptions/api/exceptions/<id>/retry/" in paths and "/api/docs/" in paths
    for path in paths:
        resolve(path.replace("<id>", "1").replace("<connection>", "shopify"))
    with pytest.raises(Resolver404):
        resolve("/exceptions/api/")


def test_the_readme_production_environment_sets_every_required_variable():
    block = README.split("## Production configuration", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    names = set(re.findall(r"^([A-Z_]+)=", block, flags=re.M))
    assert set(SECRETS + ["ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "LEDGERLINE_MODE"]) <= names
