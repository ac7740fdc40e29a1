"""Reading the figures a benchmark command prints ("  label   figure ..."), for the tests that run one."""
import re


def figure(output: str, label: str) -> str:
    """The first word after `label` on its line of the benchmark's report."""
    match = re.search(rf"^  {re.escape(label)}\s+(\S+)", output, re.M)
    assert match, f"{label!r} not in the benchmark's output:\n{output[-3000:]}"
    return match.group(1)
