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
    """Granian (a web server written in Rust; its WSGI interface runs the app in a pool of Python
    threads, one process per core) serving config.wsgi on loopback. Beside gunicorn's threaded
    workers it took about a quarter off the CPU of each webhook in the flash-sale benchmark (HTTP
    parsing, keep-alive and the hand-over to a thread are Rust, not Python). A worker that dies is
    started again, as gunicorn's arbiter did."""
    workers = str(int(os.environ.get("WEB_WORKERS") or max(2, os.cpu_count() or 2)))
    threads = os.environ.get("WEB_THREADS") or "8"
    return subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", workers, "--blocking-threads", threads, "--no-ws", "--log-level", "warning",
         "--respawn-failed-workers", "--workers-kill-timeout", "5", "config.wsgi:application"],
        env={"SQLITE_WEB_CHECKPOINT_PAGES": "20000", **env}, cwd=str(settings.BASE_DIR), **popen,
    )


def _lower_priority() -> None:
    os.nice(5)


def task_cluster(env: dict, **popen) -> subprocess.Popen:
    """The django-q2 cluster, a notch below the web server in CPU priority: during a burst the
    webhooks are answered first and the queue (paced by the ERP's limit anyway) catches up."""
    return subprocess.Popen([sys.executable, manage_py(), "qcluster"], env=env, cwd=str(settings.BASE_DIR),
                            preexec_fn=_lower_priority, **popen)
