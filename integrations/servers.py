"""How the demo and the benchmarks start the web server and the task cluster as child processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def manage_py() -> str:
    return str(Path(settings.BASE_DIR) / "manage.py")


def web_server(port: int, env: dict, **popen) -> subprocess.Popen:
    """gunicorn (threaded workers, one per core) serving config.wsgi on loopback."""
    workers = str(int(os.environ.get("WEB_WORKERS") or max(2, os.cpu_count() or 2)))
    threads = os.environ.get("WEB_THREADS") or "8"
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", workers, "--worker-class", "gthread", "--threads", threads, "--log-level", "warning",
         "--graceful-timeout", "5"],
        env={"SQLITE_WEB_CHECKPOINT_PAGES": "20000", **env}, cwd=str(settings.BASE_DIR), **popen,
    )


def _lower_priority() -> None:
    os.nice(5)


def task_cluster(env: dict, **popen) -> subprocess.Popen:
    """The django-q2 cluster, a notch below the web server in CPU priority: during a burst the
    webhooks are answered first and the queue (paced by the ERP's limit anyway) catches up."""
    return subprocess.Popen([sys.executable, manage_py(), "qcluster"], env=env, cwd=str(settings.BASE_DIR),
                            preexec_fn=_lower_priority, **popen)
