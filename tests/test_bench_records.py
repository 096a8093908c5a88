"""The benchmarks page says where each figure stands today; every run is kept in bench/results/."""

from __future__ import annotations

import re
from pathlib import Path

from bench.common import latest_tables, with_latest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = [
    "sign_throughput",
    "export_scale",
    "anonymous_issuance",
    "comment_pages",
    "log_scale",
    "petition_page",
    "viral_petition",
    "request_stack",
    "replica",
    "suite_cpu",
]

HISTORY = """# History of bench/x.py

### Sign throughput: postgresql, 2 workers (2026-11-01)

| ratio | 0.21 |

### Sign throughput: sqlite, 1 worker (2026-11-02)

| ratio | 0.70 |

### Sign throughput: postgresql, 2 workers (2026-11-24)

| ratio | 0.53 |
"""


def test_the_newest_table_of_each_configuration_is_kept_in_the_order_first_run() -> None:
    latest = latest_tables(HISTORY)
    assert "0.21" not in latest
    assert latest.index("postgresql, 2 workers (2026-11-24)") < latest.index("sqlite, 1 worker (2026-11-02)")
    assert "0.53" in latest and "0.70" in latest


def test_a_run_replaces_only_its_own_block() -> None:
    page = (
        "# Benchmarks\n\n## A\n\n<!-- latest a: written by bench/a.py -->\nold a\n<!-- /latest a -->\n\n## B\n\n"
        "<!-- latest b: written by bench/b.py -->\nold b\n<!-- /latest b -->\n"
    )
    updated = with_latest(page, "a", "### new a")
    assert "old a" not in updated and "### new a" in updated and "old b" in updated
    assert updated.index("## A") < updated.index("### new a") < updated.index("## B")
    assert with_latest(updated, "a", "### new a") == updated


def test_a_bench_without_a_block_gets_one_at_the_end() -> None:
    updated = with_latest("# Benchmarks\n", "new_bench", "### first")
    assert updated.endswith(
        "<!-- latest new_bench: written by bench/new_bench.py -->\n\n### first\n\n<!-- /latest new_bench -->\n"
    )


def test_the_page_shows_each_bench_s_newest_runs_from_its_history() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for bench in BENCHES:
        block = re.search(
            rf"<!-- latest {bench}: written by bench/{bench}\.py -->\n\n(.*?)\n\n<!-- /latest {bench} -->",
            page,
            re.DOTALL,
        )
        assert block, f"docs/benchmarks.md has no block for {bench}"
        history = (ROOT / "bench" / "results" / f"{bench}.md").read_text()
        assert block.group(1) == latest_tables(history), f"{bench}'s block is not its history's newest runs"
