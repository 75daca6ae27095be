"""PDF reports: a Chinese, branded, watermarked PDF that reads back as text; hostile text stays
text and fetches nothing; the renderer's pool renders once per key and its cache survives.

The PDF is read back with poppler-utils (pdftotext, pdfinfo, pdffonts, pdftoppm; installed by
`.ci/system-deps test`). The first page is saved to tests/artifacts/ for a human look.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.reports.render import STYLESHEET, LocalFetcher, render_html, render_pdf
from app.reports.schemas import Report, ReportRow, ReportSection
from app.reports.service import ReportRenderer, ReportUnavailable, report_cache_key

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = "138****5678"


def budget_report(**overrides: object) -> Report:
    fields: dict[str, object] = {
        "title": "装修预算报告",
        "subtitle": "三室两厅 · 120 ㎡ · 现代简约 · 中档",
        "brand": "安心家装",
        "generated_at": dt.datetime(2026, 11, 23, 6, 5, tzinfo=dt.UTC),
        "watermark": PHONE,
        "sections": [
            ReportSection(
                heading="预算总览",
                emphasis=ReportRow(
                    label="预计总花费",
                    value="18.6 – 23.4 万元",
                    note="按 2026 年本地市场价估算，含主材与人工，不含家电家具",
                ),
                rows=[
                    ReportRow(
                        label="基础装修（水电、泥瓦、木工、油漆）",
                        value="¥78,000 – ¥92,000",
                        note="按建筑面积 120 ㎡ 计",
                    ),
                    ReportRow(label="主材（瓷砖、地板、橱柜、卫浴）", value="¥62,000 – ¥81,000"),
                    ReportRow(label="软装与灯具", value="¥21,000 – ¥28,000"),
                    ReportRow(label="设计费", value="¥9,600"),
                    ReportRow(
                        label="管理费与税费", value="¥15,400 – ¥23,400", note="约为工程款的 8%–10%"
                    ),
                ],
            ),
            ReportSection(
                heading="工期与付款",
                rows=[
                    ReportRow(label="预计工期", value="75 – 90 天"),
                    ReportRow(label="首付款", value="30%"),
                ],
                paragraphs=[
                    "建议预留 10% 左右的预算作为不可预见费用，用于拆改中发现的隐蔽工程问题。",
                    "水电改造按实际米数结算，签约前请确认单价与计量方式。",
                ],
            ),
        ],
        "cta": "扫码添加专属顾问，免费获取上门量房与精准报价",
        "disclaimer": "本报告根据您填写的信息与公开市场价格自动生成，仅供参考，不构成报价。",
    }
    fields.update(overrides)
    return Report(**fields)  # type: ignore[arg-type]


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install poppler-utils (`.ci/system-deps test` does)")
    return path


def _pdf_file(pdf: bytes, directory: Path, name: str = "report.pdf") -> Path:
    path = directory / name
    path.write_bytes(pdf)
    return path


def pdf_text(pdf: bytes, directory: Path) -> str:
    path = _pdf_file(pdf, directory)
    return subprocess.run(
        # -raw: content-stream order, so the rotated watermark drawn over the page does not
        # interleave with the lines under it.
        [_poppler("pdftotext"), "-raw", "-enc", "UTF-8", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def pdf_pages(pdf: bytes, directory: Path) -> int:
    path = _pdf_file(pdf, directory)
    info = subprocess.run(
        [_poppler("pdfinfo"), str(path)], check=True, capture_output=True, text=True
    ).stdout
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])


# --- the document ------------------------------------------------------------------------------


def test_a_typical_report_is_one_chinese_page_that_reads_back_as_text(tmp_path: Path) -> None:
    pdf = render_pdf(budget_report())
    assert pdf.startswith(b"%PDF-")
    assert pdf_pages(pdf, tmp_path) == 1
    text = pdf_text(pdf, tmp_path)
    for expected in ("装修预算报告", "安心家装", PHONE, "18.6 – 23.4 万元", "¥9,600", "预算总览"):
        assert expected in text
    assert "生成于 2026-11-23 14:05" in text  # China time, from the zh_CN catalog
    assert "1 / 1" in text  # the footer's page counter

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    pdftoppm = [_poppler("pdftoppm"), "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile"]
    subprocess.run(
        [*pdftoppm, str(ARTIFACTS / "report.pdf"), str(ARTIFACTS / "report-a4")], check=True
    )


def test_the_pdf_embeds_a_cjk_font(tmp_path: Path) -> None:
    path = _pdf_file(render_pdf(budget_report()), tmp_path)
    fonts = subprocess.run(
        [_poppler("pdffonts"), str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    cjk = [line for line in fonts if "Noto" in line and "CJK" in line]
    assert cjk, fonts
    # columns: name type encoding emb sub uni …: embedded, as a subset, with a Unicode map
    assert all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in cjk), cjk


def test_english_labels_follow_the_report_locale(tmp_path: Path) -> None:
    text = pdf_text(render_pdf(budget_report(locale="en")), tmp_path)
    assert "Generated 2026-11-23 14:05" in text
    assert f"Prepared for {PHONE}" in text


def test_a_long_report_flows_onto_numbered_pages(tmp_path: Path) -> None:
    rows = [ReportRow(label=f"第 {i} 项", value=f"¥{i * 1000:,}") for i in range(1, 80)]
    pdf = render_pdf(budget_report(sections=[ReportSection(heading="明细", rows=rows)]))
    pages = pdf_pages(pdf, tmp_path)
    assert pages >= 2
    text = pdf_text(pdf, tmp_path)
    assert f"1 / {pages}" in text and f"{pages} / {pages}" in text
    assert "第 79 项" in text
    assert text.count("装修预算报告") >= pages  # the running header repeats the title


# --- hostile text --------------------------------------------------------------------------------


class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { background: red }")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that records every request, as a bait for fetches."""
    hits: list[str] = []
    handler = type("Handler", (_Listener,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_hostile_text_is_rendered_as_text_and_nothing_is_fetched(
    tmp_path: Path, listener: tuple[str, list[str]]
) -> None:
    bait, hits = listener
    script = "<script>alert(1)</script>"
    style = f"</style><style>@import url({bait}/import.css); body{{background:url({bait}/bg)}}"
    image = f'<img src="{bait}/img.png"><link rel="stylesheet" href="{bait}/link.css">'
    evil = "url(http://evil)"
    long_text = "很长" * 1000 + "x" * 3000  # 5,000 characters, no break opportunity at the end
    report = budget_report(
        title=script,
        subtitle=style,
        brand=image,
        watermark=evil,
        sections=[
            ReportSection(
                heading=f"{image}{script}",
                emphasis=ReportRow(label=style, value=evil, note=image),
                rows=[ReportRow(label=long_text, value=script, note=style)],
                paragraphs=[long_text, f'<a href="{bait}/a">{evil}</a>'],
            )
        ],
        cta=style,
        disclaimer=f"{script}{evil}{long_text}",
    )

    html = render_html(report)
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<style") == 0

    fetcher = LocalFetcher()
    pdf = render_pdf(report, url_fetcher=fetcher)
    assert pdf.startswith(b"%PDF-")
    assert not [url for url in fetcher.asked if not url.startswith("file:")], fetcher.asked
    assert hits == []

    text = pdf_text(pdf, tmp_path)
    flat = "".join(text.split())
    assert "<script>alert(1)</script>" in flat
    assert "url(http://evil)" in flat
    assert "x" * 200 in flat  # the long string wraps instead of running off the page


def test_a_title_longer_than_a_page_still_renders(tmp_path: Path) -> None:
    pdf = render_pdf(budget_report(title="很长的标题" * 100))
    assert pdf_pages(pdf, tmp_path) >= 2


def test_the_fetcher_serves_static_files_only(listener: tuple[str, list[str]]) -> None:
    bait, hits = listener
    fetcher = LocalFetcher()
    for url in (
        f"{bait}/x.css",
        "https://example.com/x.css",
        "data:text/css,body{}",
        "ftp://example.com/x",
        "file:///etc/passwd",
        f"file://{STYLESHEET.parent}/../../pyproject.toml",
        "file://example.com/etc/passwd",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert hits == []
    response = fetcher.fetch(STYLESHEET.as_uri())
    try:
        assert b"@page" in response.read()
    finally:
        response.close()


# --- the renderer: pool and cache ------------------------------------------------------------


@pytest.fixture
async def renderer(tmp_path: Path) -> AsyncIterator[ReportRenderer]:
    service = ReportRenderer(str(tmp_path), workers=1)
    service.start()
    await service.ready()
    try:
        yield service
    finally:
        service.stop()


async def test_the_renderer_caches_per_key(renderer: ReportRenderer, tmp_path: Path) -> None:
    first = await renderer.pdf(budget_report(), "tool:1:area=120")
    assert first.startswith(b"%PDF-") and renderer.renders == 1
    path = renderer.path_for("tool:1:area=120")
    assert path.parent == tmp_path / "reports"
    assert path.read_bytes() == first
    again = await renderer.pdf(budget_report(), "tool:1:area=120")
    assert again == first and renderer.renders == 1
    await renderer.pdf(budget_report(subtitle="两室一厅"), "tool:1:area=90")
    assert renderer.renders == 2
    assert not list((tmp_path / "reports").glob(".tmp-*"))


async def test_concurrent_calls_for_one_key_render_once(renderer: ReportRenderer) -> None:
    results = await asyncio.gather(*(renderer.pdf(budget_report(), "same") for _ in range(4)))
    assert renderer.renders == 1
    assert len(set(results)) == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_render(
    renderer: ReportRenderer,
) -> None:
    impatient = asyncio.ensure_future(renderer.pdf(budget_report(), "k"))
    patient = asyncio.ensure_future(renderer.pdf(budget_report(), "k"))
    await asyncio.sleep(0)
    impatient.cancel()
    assert (await patient).startswith(b"%PDF-")
    assert renderer.renders == 1
    assert renderer.path_for("k").exists()


async def test_the_cache_survives_a_restart_and_a_corrupt_file_is_rendered_again(
    tmp_path: Path,
) -> None:
    first = ReportRenderer(str(tmp_path))
    first.start()
    try:
        pdf = await first.pdf(budget_report(), "k")
    finally:
        first.stop()

    second = ReportRenderer(str(tmp_path))
    second.start()
    try:
        assert await second.pdf(budget_report(), "k") == pdf
        assert second.renders == 0

        path = second.path_for("k")
        path.write_bytes(pdf[: len(pdf) // 2])  # cut short, as by a full disk
        again = await second.pdf(budget_report(), "k")
        assert again.startswith(b"%PDF-") and second.renders == 1
        assert path.read_bytes() == again
    finally:
        second.stop()


async def test_the_cache_evicts_least_recently_used_files_past_its_cap(tmp_path: Path) -> None:
    size = len(render_pdf(budget_report()))
    service = ReportRenderer(str(tmp_path), max_cache_bytes=int(size * 2.5))
    service.start()
    try:
        await service.pdf(budget_report(), "a")
        await service.pdf(budget_report(), "b")
        old = dt.datetime(2026, 1, 1).timestamp()
        os.utime(service.path_for("a"), (old, old))
        os.utime(service.path_for("b"), (old + 1, old + 1))
        await service.pdf(budget_report(), "a")  # a hit makes "a" recent again
        assert service.renders == 2
        await service.pdf(budget_report(), "c")
        assert service.path_for("a").exists() and service.path_for("c").exists()
        assert not service.path_for("b").exists()
    finally:
        service.stop()


async def test_a_render_that_fails_is_a_503_domain_error(tmp_path: Path) -> None:
    lazy = ReportRenderer(str(tmp_path / "lazy"))
    try:
        # Not started at boot: the first call starts the pool.
        assert (await lazy.pdf(budget_report(), "k")).startswith(b"%PDF-")
    finally:
        lazy.stop()

    slow = ReportRenderer(str(tmp_path), timeout_seconds=0.001)
    slow.start()
    try:
        with pytest.raises(ReportUnavailable) as raised:
            await slow.pdf(budget_report(), "k")
        assert raised.value.status == 503
        assert not slow.path_for("k").exists()
    finally:
        slow.stop()


async def test_a_report_past_the_caps_is_refused(renderer: ReportRenderer) -> None:
    with pytest.raises(ReportUnavailable):
        await renderer.pdf(budget_report(watermark="8" * 65), "too-long")
    assert not renderer.path_for("too-long").exists()


async def test_a_dead_worker_fails_one_render_and_the_pool_recovers(
    renderer: ReportRenderer,
) -> None:
    render = asyncio.ensure_future(renderer.pdf(budget_report(), "k"))
    await asyncio.sleep(0.05)
    executor = renderer._executor
    assert executor is not None
    for pid in list(executor._processes):  # the stdlib's own table of worker processes
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(ReportUnavailable):
        await render
    assert (await renderer.pdf(budget_report(), "k")).startswith(b"%PDF-")


def test_the_cache_key_names_tool_version_inputs_and_phone() -> None:
    key = report_cache_key(
        tool="reno", version=3, inputs={"area": 120, "rooms": 3}, watermark=PHONE, locale="zh_CN"
    )
    same = report_cache_key(
        tool="reno", version="3", inputs={"rooms": 3, "area": 120}, watermark=PHONE, locale="zh_CN"
    )
    assert key == same
    for changed in (
        {"version": 4},
        {"inputs": {"area": 121, "rooms": 3}},
        {"watermark": "139****0000"},
        {"locale": "en"},
    ):
        args: dict[str, object] = {
            "tool": "reno",
            "version": 3,
            "inputs": {"area": 120, "rooms": 3},
            "watermark": PHONE,
            "locale": "zh_CN",
        }
        args.update(changed)
        assert report_cache_key(**args) != key  # type: ignore[arg-type]
