"""Schemathesis against `leadkit serve --workers 2` (SQLite, then PostgreSQL + Redis), from the
served /schema/openapi.json: examples, boundary and invalid values (coverage), then random
ones (fuzzing), once without a token and once with an admin token.

Every answer must be: no 5xx, a documented status with its documented content type and body
schema, invalid input refused with a 4xx, a wrong method refused. Bounded: a fixed seed and a
few examples per operation. The served app uses the console SMS provider: nothing is sent.
A failure prints schemathesis's report with a curl command for each case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.served import Served

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
)
MAX_EXAMPLES = 8
# A server-sent event stream never ends, so it cannot be read to the end; test_served_api.py
# checks that it answers.
NOT_FUZZED = ("/api/v1/grabs/{slug}/events", "/api/v1/draws/{slug}/events")


@pytest.mark.parametrize("identity", ["anonymous", "admin"])
def test_schemathesis(served: Served, identity: str, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{served.url}/schema/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
        *(arg for path in NOT_FUZZED for arg in ("--exclude-path", path)),
    ]
    if identity == "admin":
        token = served.token("admin", "schemathesis")
        command += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(
        command,
        cwd=tmp_path,  # its files (reports, caches) stay out of the tree
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"schemathesis found problems on {served.backend} ({identity}):\n{report[-15000:]}"
        f"\n--- server log ---\n{served.log_tail(40)}"
    )
    assert "Operations:" in report and "passed" in report, report
