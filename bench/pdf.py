"""PDF report timings, each next to a baseline measured in the same run.

    .venv/bin/python bench/pdf.py [--runs N]

Prints median and p95 over N runs of:

- warm render: ``ReportRenderer.pdf()`` on a cache miss, pool warmed (target <= 300 ms), against
  rendering the same template to a string with Jinja only;
- cold process: a fresh interpreter importing WeasyPrint and rendering once, and a new pool
  asked for a report right after ``start()`` (no warm-up awaited);
- cached: ``ReportRenderer.pdf()`` on a hit (target <= 20 ms), against reading a file of the
  same size.

Figures are for comparing changes on one machine, never for pass/fail tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.reports.render import render_html, render_pdf
from app.reports.schemas import Report, ReportRow, ReportSection
from app.reports.service import ReportRenderer

ROOT = Path(__file__).resolve().parent.parent

WARM_TARGET_MS = 300.0
CACHED_TARGET_MS = 20.0


def sample_report(variant: int = 0) -> Report:
    """A typical one-page renovation budget report; ``variant`` changes one figure."""
    return Report(
        title="装修预算报告",
        subtitle=f"三室两厅 · {120 + variant} ㎡ · 现代简约 · 中档",
        brand="安心家装",
        generated_at=dt.datetime(2026, 11, 23, 6, 5, tzinfo=dt.UTC),
        watermark="138****5678",
        sections=[
            ReportSection(
                heading="预算总览",
                emphasis=ReportRow(
                    label="预计总花费", value="18.6 – 23.4 万元", note="按本地市场价估算"
                ),
                rows=[
                    ReportRow(
                        label="基础装修（水电、泥瓦、木工、油漆）", value="¥78,000 – ¥92,000"
                    ),
                    ReportRow(label="主材（瓷砖、地板、橱柜、卫浴）", value="¥62,000 – ¥81,000"),
                    ReportRow(label="软装与灯具", value="¥21,000 – ¥28,000"),
                    ReportRow(label="设计费", value="¥9,600"),
                    ReportRow(label="管理费与税费", value="¥15,400 – ¥23,400", note="约 8%–10%"),
                ],
            ),
            ReportSection(
                heading="工期与付款",
                rows=[ReportRow(label="预计工期", value="75 – 90 天")],
                paragraphs=["建议预留 10% 左右的预算作为不可预见费用。"],
            ),
        ],
        cta="扫码添加专属顾问，免费获取上门量房与精准报价",
        disclaimer="本报告根据您填写的信息自动生成，仅供参考，不构成报价或合同承诺。",
    )


# --- figures --------------------------------------------------------------------------------


def summary(samples_s: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return statistics.median(ms), p95


def line(name: str, samples_s: list[float], baseline_ms: float | None = None) -> float:
    median, p95 = summary(samples_s)
    ratio = f"  {median / baseline_ms:8.1f}x baseline" if baseline_ms else ""
    print(f"  {name:<44} median {median:8.2f} ms   p95 {p95:8.2f} ms{ratio}")
    return median


def verdict(name: str, median_ms: float, target_ms: float) -> None:
    mark = "OK  " if median_ms <= target_ms else "OVER"
    print(f"  [{mark}] {name}: {median_ms:.1f} ms median, target <= {target_ms:.0f} ms")


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


# --- scenarios ------------------------------------------------------------------------------


# Run by a fresh interpreter, so the import of WeasyPrint and the app is timed too.
COLD_CHILD = """
import json, sys, time
start = time.perf_counter()
from app.reports.render import render_pdf
imported = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from pdf import sample_report
report = sample_report()
begun = time.perf_counter()
render_pdf(report)
done = time.perf_counter()
print(json.dumps({"import": imported - start, "render": done - begun}))
"""


def cold_processes(runs: int) -> tuple[list[float], list[float]]:
    imports, renders = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_CHILD, str(Path(__file__).parent)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        imports.append(figures["import"])
        renders.append(figures["render"])
    return imports, renders


async def new_pool_first_request(data_dir: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        renderer = ReportRenderer(str(data_dir / f"cold-{i}"))
        start = time.perf_counter()
        renderer.start()
        await renderer.pdf(sample_report(), "cold")
        samples.append(time.perf_counter() - start)
        renderer.stop()
    return samples


async def warm_pool(
    data_dir: Path, runs: int
) -> tuple[list[float], list[float], int, tuple[float, float]]:
    renderer = ReportRenderer(str(data_dir / "warm"), workers=1)
    begun = time.perf_counter()
    renderer.start()
    started = time.perf_counter()
    try:
        await renderer.ready()
        warmed = time.perf_counter()
        misses = []
        for i in range(runs):
            start = time.perf_counter()
            await renderer.pdf(sample_report(i), f"miss-{i}")
            misses.append(time.perf_counter() - start)
        pdf = await renderer.pdf(sample_report(0), "miss-0")
        hits = []
        for _ in range(runs * 5):
            start = time.perf_counter()
            await renderer.pdf(sample_report(0), "miss-0")
            hits.append(time.perf_counter() - start)
        assert renderer.renders == runs, "a cached call rendered again"
        return misses, hits, len(pdf), (started - begun, warmed - begun)
    finally:
        renderer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (default 15)")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes (default 5)")
    args = parser.parse_args()

    print("PDF report (one A4 page, Chinese, watermark), ReportRenderer with 1 worker")
    report = sample_report()
    render_html(report)
    jinja = timed(lambda: render_html(report), args.runs * 5)
    in_process = timed(lambda: render_pdf(report), args.runs)

    with tempfile.TemporaryDirectory(prefix="leadkit-bench-pdf-") as tmp:
        data_dir = Path(tmp)
        misses, hits, size, (start_s, ready_s) = asyncio.run(warm_pool(data_dir, args.runs))
        same_size = data_dir / "same-size.bin"
        same_size.write_bytes(b"\0" * size)
        file_read = timed(same_size.read_bytes, args.runs * 5)
        first_requests = asyncio.run(new_pool_first_request(data_dir, args.cold_runs))
    imports, cold_renders = cold_processes(args.cold_runs)

    print(f"\nfirst render (cache miss), {args.runs} runs; PDF size {size / 1024:.0f} KB")
    jinja_ms = line("baseline: Jinja only, same template", jinja)
    line("render_pdf() in this process", in_process, jinja_ms)
    warm_ms = line("ReportRenderer.pdf(), warm pool", misses, jinja_ms)

    print(f"\ncold start, {args.cold_runs} runs")
    line("fresh interpreter: import WeasyPrint + app", imports)
    line("fresh interpreter: first render", cold_renders, jinja_ms)
    print(f"  {'first pool of the process: start() returns':<44} {start_s * 1000:8.0f} ms")
    print(f"  {'first pool of the process: workers warm':<44} {ready_s * 1000:8.0f} ms")
    line("new pool (fork server up): first pdf()", first_requests, jinja_ms)

    print(f"\ncached download, {args.runs * 5} runs")
    read_ms = line("baseline: read a file of the same size", file_read)
    cached_ms = line("ReportRenderer.pdf(), cache hit", hits, read_ms)

    print("\ntargets")
    verdict("first render of one page (warm pool)", warm_ms, WARM_TARGET_MS)
    verdict("cached download", cached_ms, CACHED_TARGET_MS)


if __name__ == "__main__":
    main()
