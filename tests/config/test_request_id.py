"""Every unexpected error is logged with its traceback, and a request id ties the log line to the page
the user saw (the X-Request-ID header, the 500 page's reference)."""
import io
import logging
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    """What the configured console handler (settings.LOGGING) writes, as text."""
    handler = next(h for h in logging.getLogger("django").handlers if getattr(h, "name", "") == "console")
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


@pytest.fixture
def broken_home(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("the home page broke")

    monkeypatch.setattr("config.views.render", boom)


def signed_in_client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_every_response_carries_a_request_id(client, ops_user):
    client.force_login(ops_user)
    first, second = client.get("/"), client.get("/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_sane_incoming_request_id_is_kept(client):
    response = client.get("/health/", headers={"X-Request-ID": "lb-7f3a9c01-42"})
    assert response["X-Request-ID"] == "lb-7f3a9c01-42"


@pytest.mark.parametrize("incoming", ["two words", "x" * 65, "line\\nbreak", "<script>", "-starts-with-a-dash"])
def test_an_insane_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/health/", headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_an_unexpected_error_is_logged_with_its_traceback_and_the_request_id(ops_user, broken_home, console):
    response = signed_in_client(ops_user).get("/")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    log = console.getvalue()
    assert f"ERROR django.request [{request_id}] Internal Server Error: /" in log
    assert "Traceback (most recent call last)" in log and "RuntimeError: the home page broke" in log


def test_the_500_page_shows_the_reference_to_quote(ops_user, broken_home, console):
    response = signed_in_client(ops_user).get("/")
    assert response.status_code == 500
    assert response["X-Request-ID"] in response.content.decode()


def test_the_500_page_is_the_styled_template_with_the_request_id(ops_user, broken_home, console, settings, tmp_path):
    (tmp_path / "500.html").write_text("<h1>Something went wrong</h1><p>Reference {{ request_id }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    response = signed_in_client(ops_user).get("/")
    assert response.status_code == 500
    assert response.content.decode() == f"<h1>Something went wrong</h1><p>Reference {response['X-Request-ID']}</p>"


def test_the_500_page_falls_back_to_plain_text_when_its_template_fails(ops_user, broken_home, console, monkeypatch):
    def no_template(name, *args, **kwargs):
        raise RuntimeError("template engine down")

    monkeypatch.setattr("config.views.loader.get_template", no_template)
    response = signed_in_client(ops_user).get("/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/plain")
    assert f"quote this reference: {response['X-Request-ID']}" in response.content.decode()


def test_a_4xx_log_line_carries_the_request_id_too(client, console):
    response = client.get("/api/schema/")
    assert response.status_code in (401, 403)
    assert f"[{response['X-Request-ID']}] Forbidden: /api/schema/" in console.getvalue() \
        or f"[{response['X-Request-ID']}] Unauthorized: /api/schema/" in console.getvalue()


def test_a_failed_task_is_logged_with_its_traceback(console):
    """A task that raises in a cluster worker: the cluster's monitor logs it with the traceback."""
    from multiprocessing import Queue, Value
    from uuid import uuid4

    from django.utils import timezone
    from django_q.monitor import monitor
    from django_q.worker import worker

    q_console = next(h for h in logging.getLogger("django-q").handlers if getattr(h, "name", "") == "console")
    assert q_console.stream is console  # the same console handler as Django's own loggers
    tasks, results = Queue(), Queue()
    tasks.put({"id": uuid4().hex, "name": "failing-task", "func": "math.sqrt", "args": (-1,), "kwargs": {},
               "started": timezone.now()})
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results)
    for queue in (tasks, results):
        queue.close()
        queue.join_thread()
    log = console.getvalue()
    assert "ERROR django-q [-] Failed 'math.sqrt' (failing-task)" in log
    assert "Traceback (most recent call last)" in log and "ValueError: math domain error" in log
