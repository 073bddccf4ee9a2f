"""Terminal tables keep every name and number whole on a narrow terminal (predictor.tables, nas.progress)."""

from __future__ import annotations

import io

from rich.console import Console

from nas.config import SearchConfig
from nas.progress import jobs_table
from nas.results import Job, SplitBreakdown, SplitResult
from predictor.cli import _scores_table
from predictor.tables import print_table

SCORES = {"n": 40, "total": 40, "rmse_ms": 0.012345, "mape": 12.3456, "within_5": 45.67, "within_10": 78.9,
          "spearman": 0.98765, "kendall": 0.91234, "note": "held out by layer configuration"}


def narrow_console() -> Console:
    return Console(file=io.StringIO(), width=80, color_system=None)


def column(text: str, index: int) -> list[str]:
    """The cells of column ``index`` on every body line of a rendered table."""
    return [line.split("│")[index + 1].strip() for line in text.splitlines() if line.startswith("│")]


def test_scores_tables_keep_kind_names_and_numbers_whole() -> None:
    console = narrow_console()
    rows = [(kind, protocol, SCORES) for kind in ("flops-linear", "flops-linear-intercept", "gbdt")
            for protocol in ("entry", "layer")]
    print_table(console, _scores_table("raspi4 (fbnet-cifar100): held-out accuracy", rows))
    text = console.file.getvalue()
    assert "…" not in text
    assert {"flops-linear", "flops-linear-intercept", "gbdt"} <= set(column(text, 0))
    assert "0.0123" in text and "0.9877" in text and "12.35" in text
    assert console.width == 80  # the console is left as it was


def test_jobs_table_shows_the_whole_architecture() -> None:
    arch = ",".join(["k3_e1", "k5_e6_g2", "skip", "k3_e6"] * 5 + ["k5_e3", "k3_e1_g2"]) + "@7"
    # only the fields the table shows (model_construct validates nothing)
    result = SplitResult.model_construct(
        architecture=arch, split=7, meets_t_th=True, latency=SplitBreakdown.model_construct(total_ms=12.345),
        accuracy_at_loss=0.9123, accuracy_clean=0.934, wall_time_s=61.0, latency_share=0.0012,
    )
    job = Job.model_construct(uid="0123456789abcdef", method="hwnas-nodropout", status="completed",
                              config=SearchConfig(seed=0, t_th=30.0), result=result)
    for width in (80, 120):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        print_table(console, jobs_table([job]))  # as nas report prints it
        text = console.file.getvalue()
        assert "…" not in text
        assert "".join(column(text, 3)) == arch
        assert column(text, 1)[0] == "hwnas-nodropout"
