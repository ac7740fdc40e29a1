"""Every sandbox module imports nothing of the product (only the sandbox's own modules and third-party
libraries), so a product mistake cannot be mirrored by the stand-in and pass unnoticed."""
import ast
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[3] / "integrations" / "sandbox"
PRODUCT = {"integrations", "mappings", "exceptions_queue", "config", "tests", "django"}


@pytest.mark.parametrize("path", sorted(SANDBOX.rglob("*.py")), ids=lambda p: str(p.relative_to(SANDBOX)))
def test_a_sandbox_module_imports_nothing_of_the_product(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    leaks = {name for name in imported if name.split(".")[0] in PRODUCT and not name.startswith("integrations.sandbox")}
    assert not leaks, f"{path.name} imports {sorted(leaks)}"
