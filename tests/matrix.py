"""What `make test-matrix` varies for the tests that compare numbers: threads per process and the kernels.

ATEN_CPU_CAPABILITY (default, avx2, avx512) reaches every process through the environment as it is; the
thread count is LLMFT_TEST_THREADS (1 unless set), which the tests that start runs put in their configs
(`training.num_threads`) and their processes' OMP_NUM_THREADS, and conftest gives the test process itself.

`python tests/matrix.py [--only CAP:THREADS,...] [pytest args]` runs the tests marked `numeric` once per
kernel width this CPU has and per thread count (1, 2), says which kernels torch really took in each, and
ends with a table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

THREADS = int(os.environ.get("LLMFT_TEST_THREADS", "1"))
THREAD_COUNTS = (1, 2)


def thread_env() -> dict[str, str]:
    """The environment variables that fix a test subprocess's threads to THREADS."""
    return {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}


def capabilities() -> list[str]:
    """The ATEN_CPU_CAPABILITY values this CPU can run: `default` always, the wider ones by its flags."""
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    found = ["default"]
    if "avx2" in flags:
        found.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        found.append("avx512")
    return found


def _taken(env: dict[str, str]) -> str:
    """The kernel width torch reports under ``env`` (it falls back silently when a value is not allowed)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()[-200:]


def _counts(report: Path) -> str:
    """passed/failed/errors/skipped from pytest's JUnit XML report of one run."""
    import xml.etree.ElementTree as ET

    if not report.exists():
        return "(no report)"
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    total, failed, errors, skipped = (
        int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")
    )
    return f"{total - failed - errors - skipped} passed, {failed} failed, {errors} errors, {skipped} skipped"


def _wanted(extra: list[str]) -> tuple[set[str] | None, list[str]]:
    """``--only default:1,avx2:2`` limits the runs to those cells; the other arguments go to pytest."""
    if "--only" not in extra:
        return None, extra
    at = extra.index("--only")
    return set(extra[at + 1].split(",")), extra[:at] + extra[at + 2 :]


def main(argv: list[str]) -> int:
    """Run the numeric tests once per (kernel width, thread count); 0 only when every run passed."""
    only, extra = _wanted(argv)
    root = Path(__file__).resolve().parents[1]
    reports = root / "outputs" / "test-matrix"
    reports.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, str, int, float, str]] = []
    for capability in capabilities():
        for threads in THREAD_COUNTS:
            if only is not None and f"{capability}:{threads}" not in only:
                continue
            env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "LLMFT_TEST_THREADS": str(threads)}
            taken = _taken(env)
            print(
                f"\n=== ATEN_CPU_CAPABILITY={capability} (torch takes {taken}), {threads} thread(s) ===",
                flush=True,
            )
            report = reports / f"{capability}-{threads}.xml"
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "numeric"]
            started = time.monotonic()
            code = subprocess.run(
                [*command, f"--junitxml={report}", *extra, "tests"], env=env, cwd=root
            ).returncode
            rows.append((capability, threads, taken, code, time.monotonic() - started, _counts(report)))
    print("\nnumeric tests under each kernel width and thread count:")
    for capability, threads, taken, code, seconds, counts in rows:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(
            f"  {capability:8} (torch: {taken:8}) × {threads} thread(s): {status:16} {seconds:5.0f}s {counts}"
        )
    return 0 if all(row[3] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
