"""A flash sale while task-cluster processes are killed with SIGKILL (workers, the pusher, the monitor),
then handed out again and swept by the product itself: every order in the ERP exactly once, at the
storefront's total, and every new buyer under one ERP account."""
import os
import subprocess
import sys

from django.conf import settings

from tests.benchmark_output import figure



def test_a_sale_survives_its_task_processes_being_killed_with_nothing_lost_or_doubled():
    env = {**os.environ, "LEDGERLINE_MODE": "test", "LEDGERLINE_NO_BOOTSTRAP": "1", "Q_WORKERS": "2"}
    env.pop("DATABASE_URL", None)  # a throw-away SQLite file of the benchmark's own
    run = subprocess.run(
        [sys.executable, "manage.py", "benchmark_flash_sale", "--orders", "600", "--customers", "150",
         "--rate", "60", "--kill-workers", "0.7", "--timeout", "240"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert int(figure(out, "processes killed (SIGKILL)")) >= 5, out[-2000:]
    assert figure(out, "orders in the ERP") == "600"
    assert figure(out, "lost orders") == "0"
    assert figure(out, "duplicates in the ERP") == "0"
    assert figure(out, "ERP customers per buyer") == "1.00"  # no buyer opened twice
    assert figure(out, "posted with a wrong total") == "0"
    assert "{'posted': 600}" in out
    assert "host speed during the sale" in out  # how busy the machine was, to read the run by
    # How much of the sale SQLite's one write lock was held, the webhooks' share and the tasks' (their
    # processes killed and started again all along): both wrote, and the lock was never held twice over.
    held = out.split("SQLite write lock held", 1)[1].splitlines()[0]
    webhooks, tasks = (float(held.split(f"{role} ", 1)[1].split(",")[0].rstrip(")")) for role in ("webhooks", "tasks"))
    assert webhooks > 0 and tasks > 0 and 0 < int(held.split("), ", 1)[1].split("%")[0]) <= 100, held
