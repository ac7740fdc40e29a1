#!/usr/bin/env python3
"""Ledgerline's command line.

Run it with any Python 3.11+: on first use it builds `.venv/` from pyproject.toml (and again
whenever pyproject.toml changes), then re-runs itself inside that environment.

    python3 manage.py demo      # install, migrate, seed, start web + qcluster + sandbox systems
    python3 manage.py test      # the whole test suite (pytest), arguments passed on to pytest
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PY = VENV / "bin" / "python"
STAMP = VENV / ".ledgerline-installed"
# Commands that run against the bundled sandbox systems: they set LEDGERLINE_MODE=demo, the only mode
# besides the tests that may fall back to the sandbox secrets published in this repository.
DEMO_COMMANDS = {"demo", "demo_seed", "sandbox", "sandbox_flash_sale", "benchmark_flash_sale",
                 "inventory_benchmark", "exceptions_benchmark"}


def _requirements_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def _ensure_venv() -> None:
    """Create or refresh .venv, then re-exec inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    wanted = _requirements_hash()
    if not VENV_PY.exists() or not STAMP.exists() or STAMP.read_text() != wanted:
        print("Ledgerline: installing Python dependencies into .venv (first run or pyproject changed)...", flush=True)
        if not VENV_PY.exists():
            subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        pip = [str(VENV_PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.check_call(pip + ["--upgrade", "pip"])
        # Only the dependencies are wanted (the project runs from its checkout), so a plain install of
        # the project: an editable one makes setuptools warn about folders shadowing the package.
        subprocess.check_call(pip + [f"{ROOT}[dev]"])
        STAMP.write_text(wanted)
    os.execv(str(VENV_PY), [str(VENV_PY), str(ROOT / "manage.py"), *sys.argv[1:]])


def main() -> None:
    if os.environ.get("LEDGERLINE_NO_BOOTSTRAP") != "1":
        _ensure_venv()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "test":
        # The test command is pytest (pytest-django), not Django's unittest runner.
        from config.testrun import run_tests

        sys.exit(run_tests(sys.argv[2:]))
    if command in DEMO_COMMANDS:
        os.environ["LEDGERLINE_MODE"] = "demo"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 -- loads the settings: a missing secret stops here, plainly
    except ImproperlyConfigured as exc:
        sys.exit(f"Ledgerline cannot start: {exc}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
