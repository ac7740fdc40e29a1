"""`manage.py test`: make sure the browser the e2e tests drive is present, then run pytest."""
import os
import shutil
import subprocess
import sys

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def ensure_chromium() -> None:
    """Install Debian's chromium when missing (root only); the e2e tests never download a browser."""
    if os.path.exists(CHROMIUM) or os.environ.get("LEDGERLINE_SKIP_BROWSER_INSTALL") == "1":
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"Ledgerline: {CHROMIUM} is missing and cannot be installed here; e2e tests will say so.")
        return
    print("Ledgerline: installing Debian's chromium for the browser tests...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env)


def run_tests(args: list[str]) -> int:
    ensure_chromium()
    # Tests may use the sandbox secrets; a production environment in the shell does not apply to them.
    os.environ["LEDGERLINE_MODE"] = "test"
    import pytest

    return pytest.main(args)
