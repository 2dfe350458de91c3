"""Run the scenarios: every contender in its own subprocess, interleaved round by round, then aggregate.

Rounds rotate the contenders' order, so slow drift in the machine's load (other jobs) spreads over all of
them; ratios are taken within a round (neighbours in time) and the median over rounds is reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmft.bench.contenders import SETTINGS, is_packed
from llmft.bench.flops import FlopCounts
from llmft.bench.scenario import Scenario, prepare

Say = Callable[[str], None]
JEMALLOC = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)
MEDIAN_FIELDS = (
    "real_tokens_per_second",
    "real_tokens_per_cpu_second",
    "seconds_per_step",
    "median_seconds_per_step",
    "time_to_first_step_s",
    "peak_rss_mb",
    "train_peak_rss_mb",
    "model_flops_per_second",
    "mfu",
    "eval_loss",
    "last_step_loss",
    "real_tokens_per_step",
    "pad_fraction",
    "all_real_tokens",
    "steps",
    "train_seconds",
)


@dataclass
class BenchOptions:
    out: Path
    cache: Path
    threads: int = 2
    allocator: str = "auto"  # auto (jemalloc when installed), jemalloc, glibc
    timeout_s: float | None = None
    cli_timing: bool = True
    peak_seconds: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)


def jemalloc_path() -> str | None:
    return next((p for p in JEMALLOC if Path(p).is_file()), None)


def child_env(options: BenchOptions) -> tuple[dict[str, str], str]:
    """The environment every child gets (same threads, allocator, offline hub); and the allocator's name."""
    import llmft

    env = dict(os.environ)
    src = str(Path(llmft.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.update(
        {
            "OMP_NUM_THREADS": str(options.threads),
            "MKL_NUM_THREADS": str(options.threads),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            **options.extra_env,
        }
    )
    allocator = "glibc"
    lib = jemalloc_path()
    if options.allocator == "jemalloc" and lib is None:
        raise RuntimeError("--allocator jemalloc: libjemalloc.so.2 not found (apt-get install libjemalloc2)")
    if options.allocator in ("auto", "jemalloc") and lib is not None:
        env["LD_PRELOAD"] = os.pathsep.join(filter(None, [lib, env.get("LD_PRELOAD")]))
        allocator = f"jemalloc ({lib})"
    return env, allocator


def _wait(proc: subprocess.Popen[bytes], timeout_s: float | None) -> tuple[int, float]:
    """Exit code and the child's own peak RSS in MB (``os.wait4``: this child only, not all children)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss / 1024.0  # Linux: kilobytes
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.05)


def run_contender(
    scenario: Scenario, name: str, round_no: int, options: BenchOptions, env: dict[str, str]
) -> dict:
    from llmft.config.schema import RunConfig

    config = RunConfig.model_validate(scenario.config)
    packed = is_packed(name, config)
    run_dir = options.out / "runs" / scenario.name.replace("/", "-") / f"{name}-r{round_no}"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "contender": name,
        "round": round_no,
        "config": scenario.config,
        "threads": options.threads,
        "batch_size": scenario.stats["packed_batch_size"] if packed else scenario.batch_size,
        "warmup": scenario.warmup,
        "pad_id": scenario.stats["pad_id"],
        "out_dir": str(run_dir),
    }
    spec_file, result_file = run_dir / "spec.json", run_dir / "result.json"
    result_file.unlink(missing_ok=True)
    spec["launch_time"] = time.time()  # time to the first step counts from here: the process launch
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with (run_dir / "log.txt").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmft.bench.worker", str(spec_file), str(result_file)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        code, rss = _wait(proc, options.timeout_s)
    if code != 0 or not result_file.is_file():
        tail = (run_dir / "log.txt").read_text(encoding="utf-8", errors="replace")[-1500:]
        return {
            "contender": name,
            "round": round_no,
            "error": f"exit code {code}",
            "log_tail": tail,
            "peak_rss_mb": rss,
            "packed": packed,
        }
    result = json.loads(result_file.read_text(encoding="utf-8"))
    result.update({"peak_rss_mb": rss, "packed": packed})
    return result


def measure_peak(options: BenchOptions, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmft.bench.worker",
            "--peak",
            str(options.threads),
            str(options.peak_seconds),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _derive(run: dict, scenario: Scenario, peak_gflops: float) -> None:
    """Model FLOP/s by the shared formula (flops.py), and MFU against the run's matmul peak."""
    if "error" in run:
        return
    counts = FlopCounts(**run["flops"])
    real = run["real_tokens"]
    useful = counts.useful(real, real * float(scenario.stats["loss_fraction"]), run["sum_len_sq"])  # type: ignore[arg-type]
    run["model_flops_per_second"] = useful / run["steady_seconds"]
    run["mfu"] = run["model_flops_per_second"] / (peak_gflops * 1e9)


nan = float("nan")


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def aggregate(scenario: Scenario, runs: list[dict]) -> dict[str, object]:
    """Median per contender over the rounds, and llmft's ratios to each baseline taken within rounds."""
    contenders: dict[str, object] = {}
    for name in scenario.all_contenders:
        mine = [r for r in runs if r["contender"] == name and "error" not in r]
        errors = [r for r in runs if r["contender"] == name and "error" in r]
        median = {f: _median([float(r[f]) for r in mine if f in r]) for f in MEDIAN_FIELDS}
        contenders[name] = {
            "settings": SETTINGS[name],
            "packed": any(r.get("packed") for r in mine),
            "batch_size": mine[0]["batch_size"] if mine else None,
            "median": median,
            "rounds_ok": len(mine),
            "errors": errors,
        }
    ratios: dict[str, dict[str, float]] = {}
    ours = {r["round"]: r for r in runs if r["contender"] == "llmft" and "error" not in r}
    for name in scenario.all_contenders:
        if name == "llmft":
            continue
        pairs = [
            (ours[r["round"]], r)
            for r in runs
            if r["contender"] == name and "error" not in r and r["round"] in ours
        ]
        if pairs:
            ratios[name] = {
                "tokens_per_second": _median(
                    [a["real_tokens_per_second"] / b["real_tokens_per_second"] for a, b in pairs]
                ),
                "tokens_per_cpu_second": _median(
                    [a["real_tokens_per_cpu_second"] / b["real_tokens_per_cpu_second"] for a, b in pairs]
                ),
                "eval_loss_rel_diff": _median(
                    [(a["eval_loss"] - b["eval_loss"]) / b["eval_loss"] for a, b in pairs]
                ),
                "peak_rss": _median([a["peak_rss_mb"] / b["peak_rss_mb"] for a, b in pairs]),
                "last_step_loss_abs_diff": _median(
                    [abs(a.get("last_step_loss", nan) - b.get("last_step_loss", nan)) for a, b in pairs]
                ),
                "train_peak_rss": _median(
                    [a.get("train_peak_rss_mb", nan) / b.get("train_peak_rss_mb", nan) for a, b in pairs]
                ),
            }
    return {
        "name": scenario.name,
        "model": scenario.model_facts,
        "data": scenario.data,
        "stats": scenario.stats,
        "batch_size": scenario.batch_size,
        "warmup_steps": scenario.warmup,
        "measured_steps": scenario.steps,
        "max_length": scenario.max_length,
        "rounds": scenario.rounds,
        "contenders": contenders,
        "llmft_ratio_to": ratios,
        "runs": runs,
    }


def run_bench(scenarios: list[Scenario], options: BenchOptions, say: Say) -> dict[str, object]:
    from llmft.bench.cli_timing import time_cli

    started = time.time()
    env, allocator = child_env(options)
    options.out.mkdir(parents=True, exist_ok=True)
    peaks: list[dict[str, float]] = [measure_peak(options, env)]
    say(f"fp32 matmul peak: {peaks[0]['best_gflops']:.0f} GFLOP/s (best), allocator {allocator}")
    results = []
    for scenario in scenarios:
        say(f"[{scenario.name}] preparing model and data")
        prepare(scenario, options.out, options.cache)
        runs: list[dict] = []
        for round_no in range(scenario.rounds):
            for name in scenario.lineup(round_no):
                t = time.time()
                run = run_contender(scenario, name, round_no, options, env)
                runs.append(run)
                say(
                    f"[{scenario.name}] round {round_no + 1}/{scenario.rounds} {name}: "
                    + (
                        f"{run['real_tokens_per_second']:.1f} tok/s, eval loss {run['eval_loss']:.4f}, "
                        f"RSS {run['peak_rss_mb']:.0f} MB ({time.time() - t:.0f}s)"
                        if "error" not in run
                        else f"FAILED ({run['error']}); log: {run['log_tail'][-400:]}"
                    )
                )
            peaks.append(measure_peak(options, env))
        results.append((scenario, runs))
    peak = max(p["best_gflops"] for p in peaks)
    scenarios_out = []
    for scenario, runs in results:
        for run in runs:
            _derive(run, scenario, peak)
        scenarios_out.append(aggregate(scenario, runs))
    report = {
        "machine": {
            "threads": options.threads,
            "allocator": allocator,
            "cpu_count": os.cpu_count(),
            "peak_gflops": peak,
            "peak_measurements": peaks,
            "load_average_at_end": os.getloadavg(),
        },
        "versions": _versions(),
        "options": {**asdict(options), "out": str(options.out), "cache": str(options.cache)},
        "scenarios": scenarios_out,
        "wall_seconds": 0.0,
    }
    if options.cli_timing:
        report["cli"] = time_cli(options.out, scenarios[0].config, env)
    report["wall_seconds"] = time.time() - started
    return report


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "accelerate", "datasets", "trl"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
