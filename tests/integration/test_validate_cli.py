"""`llmft validate` as a user runs it: a real subprocess on real files.

The broken-config corpus (tests/data/broken_configs, expectations in its expectations.yaml) is run
file by file: exit code 2, the expected message on stderr at the expected path and line, and never a
traceback. The example configs must validate, fast, without importing torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

from llmft.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT / "tests" / "data" / "broken_configs"
EXPECTATIONS: dict[str, dict] = yaml.safe_load((CORPUS / "expectations.yaml").read_text(encoding="utf-8"))
EXAMPLES = sorted((REPO_ROOT / "configs").glob("*.*"))


def run_cli(
    *args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m llmft.cli.main ARGS`` in a fresh interpreter, with this checkout's sources."""
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )


def corpus_path(name: str) -> str:
    return str((CORPUS / name).relative_to(REPO_ROOT))


def problem_line(stderr: str, expect: dict) -> str:
    """The stderr line reporting the expected problem (its path and message fragment)."""
    head = f"  - {expect['path']}: " if expect["path"] else "  - "
    matches = [ln for ln in stderr.splitlines() if ln.startswith(head) and expect["contains"] in ln]
    assert matches, f"no line starting {head!r} containing {expect['contains']!r} in:\n{stderr}"
    return matches[0]


# ------------------------------------------------------------------------------------------- corpus
def test_corpus_is_large_and_every_file_has_an_expectation() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "expectations.yaml"}
    assert len(files) >= 40
    assert files == set(EXPECTATIONS), (
        f"without expectation: {sorted(files - set(EXPECTATIONS))}; "
        f"without file: {sorted(set(EXPECTATIONS) - files)}"
    )
    for name, expect in EXPECTATIONS.items():
        assert {"path", "contains"} <= set(expect) <= {"path", "contains", "line", "location", "args"}, name


def check_text_report(name: str, code: int, stdout: str, stderr: str) -> None:
    expect = EXPECTATIONS[name]
    assert "Traceback" not in stdout + stderr
    assert "internal error" not in stderr
    assert code == 2, stdout + stderr
    line = problem_line(stderr, expect)
    if "line" in expect:
        assert f"({corpus_path(name)}:{expect['line']})" in line
    if "location" in expect:
        assert f"({expect['location']})" in line


# A fresh interpreter per file costs ~0.4 s of CPU; the subprocess runs take every other file (and every
# file that fails before validation, where the error takes another road), the in-process runs take all.
SUBPROCESS_CASES = sorted(
    set(sorted(EXPECTATIONS)[::2]) | {n for n, e in EXPECTATIONS.items() if not e["path"]}
)


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_broken_config_in_subprocess(name: str) -> None:
    result = run_cli("validate", corpus_path(name), *EXPECTATIONS[name].get("args", []))
    check_text_report(name, result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_broken_config_in_process(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    code = main(["validate", corpus_path(name), *EXPECTATIONS[name].get("args", [])])
    captured = capsys.readouterr()
    check_text_report(name, code, captured.out, captured.err)


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_broken_config_json_report(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--format json``: the same problem, as data (in-process, so the whole corpus stays quick)."""
    expect = EXPECTATIONS[name]
    code = main(["validate", str(CORPUS / name), *expect.get("args", []), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 2
    report = json.loads(out)
    assert report["valid"] is False
    matching = [
        p
        for p in report["problems"]
        if p["path"] == expect["path"] and expect["contains"] in f"{p['message']} Fix: {p['fix']}"
    ]
    assert matching, report["problems"]
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert all(isinstance(p["fix"], str) and p["fix"].strip() for p in errors), errors  # every error: a fix
    problem = matching[0]
    assert problem["severity"] == "error"
    assert set(problem) == {"path", "message", "fix", "severity", "location"}
    if "line" in expect:
        assert problem["location"] == f"{CORPUS / name}:{expect['line']}"
    if "location" in expect:
        assert problem["location"] == expect["location"]


# ------------------------------------------------------------------------------------ valid configs
# What `make quickstart` and the HPO demo write, which the example configs name (validate checks it is there).
MADE_BY_THE_DEMOS = [
    f"outputs/{demo}/data/{split}.jsonl"
    for demo in ("tiny", "hpo_demo")
    for split in ("train", "validation", "test")
] + [
    "outputs/tiny/base/",
    "outputs/tiny/run/model/",
    "outputs/hpo_demo/bert/",
    "models/SmolLM2-135M-Instruct.Q4_1.gguf",
]


@pytest.fixture(scope="module")
def demo_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configs folder with the files the demos make beside it, as after `make quickstart`."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    for name in MADE_BY_THE_DEMOS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).mkdir() if name.endswith("/") else (root / name).write_text("{}\n")
    shared = root.parent / "shared" / "data"  # the quickstart's identity data, beside the checkout
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "identity.json").write_text("[]\n")
    return root


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_validate(config: Path, demo_checkout: Path) -> None:
    result = run_cli("validate", f"configs/{config.name}", cwd=demo_checkout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"configs/{config.name}: valid"
    assert "Traceback" not in result.stderr


def test_the_tiny_config_before_make_tiny_names_what_is_missing() -> None:
    result = run_cli("validate", "configs/tiny.yaml", cwd=REPO_ROOT)
    if (REPO_ROOT / "outputs" / "tiny" / "base").is_dir():
        pytest.skip("`make tiny` has run in this checkout")
    assert result.returncode == 2
    assert (
        "  - model.name_or_path: local model folder not found: ../outputs/tiny/base "
        "(configs/tiny.yaml:19) Fix: correct the path (relative paths in a config file are relative "
        "to its folder), or use a Hub id such as org/name" in result.stderr.splitlines()
    )


def test_legacy_config_prints_one_notice_per_legacy_key() -> None:
    result = run_cli("validate", "configs/bert_classifier_config.json")
    assert result.returncode == 0
    notices = [ln for ln in result.stderr.splitlines() if ln.startswith("notice: ")]
    assert (
        "notice: model.model_type: legacy key, read as `model.task` (configs/bert_classifier_config.json:32)"
        " Fix: write `model.task`" in notices
    )
    assert any(
        ln.startswith("notice: hpo.search_space: legacy key, read as `hpo.parameters`") for ln in notices
    )
    assert all("\n" not in ln and ln.count("notice:") == 1 for ln in notices)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    config = tmp_path / "sft.yaml"
    config.write_text(
        "data:\n  dataset:\n    train_file: train.jsonl\n"
        "model:\n  name_or_path: gpt2\n  adapter:\n    lora_alpah: 16\n"
        "training:\n  learning_rate: fast\n  optimizer: adamww\n  warmup_steps: 10\n  warmup_ratio: 0.1\n",
        encoding="utf-8",
    )
    result = run_cli("validate", "sft.yaml", "training.batch_size=0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "sft.yaml: 5 problems",
        "  - model.adapter.lora_alpah: unknown key (did you mean `lora_alpha`?) (sft.yaml:7) "
        "Fix: rename `lora_alpah` to `alpha` (the current name of `lora_alpha`)",
        "  - training.batch_size: expected a number > 0, got 0 (command line) "
        "Fix: use a whole number > 0, such as 8",
        '  - training.learning_rate: expected a number, got "fast" (sft.yaml:9) '
        "Fix: write a number such as 2e-4 (no quotes)",
        '  - training.optimizer: expected one of adamw, sgd, adafactor, adamw_8bit; got "adamww" '
        "(did you mean `adamw`?) (sft.yaml:10) Fix: use `adamw` (or one of: sgd, adafactor, adamw_8bit)",
        "  - training: set warmup_steps or warmup_ratio, not both (sft.yaml:8) "
        "Fix: delete `warmup_steps` or `warmup_ratio`",
    ]


def test_qlora_without_cuda_is_at_most_a_warning_and_exit_0(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("{}\n")
    config = tmp_path / "qlora.yaml"
    config.write_text(
        "data: {dataset: {train_file: t.jsonl}}\n"
        "model:\n  name_or_path: gpt2\n  adapter: {type: qlora, r: 8}\n",
        encoding="utf-8",
    )
    result = run_cli("validate", str(config), env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    # bitsandbytes' CPU kernels run qlora here; without the package, validate warns and still passes.
    warned = "warning: model.adapter.type: a quantised base (qlora) needs bitsandbytes" in result.stderr
    assert warned == (importlib.util.find_spec("bitsandbytes") is None)
    assert result.stdout.strip().endswith(": valid")


def test_json_format_of_a_valid_legacy_config_lists_notices() -> None:
    result = run_cli("validate", "configs/example_config.json", "--format", "json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["config"] == "configs/example_config.json"
    assert report["problems"] and {p["severity"] for p in report["problems"]} == {"notice"}


def test_missing_file_and_bad_format_option() -> None:
    missing = run_cli("validate", "no/such/config.yaml")
    assert missing.returncode == 2 and "config file not found: no/such/config.yaml" in missing.stderr
    bad = run_cli("validate", "configs/tiny.yaml", "--format", "xml")
    assert bad.returncode == 2 and "--format must be text or json, got 'xml'" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


def test_directory_instead_of_file() -> None:
    result = run_cli("validate", "configs")
    assert result.returncode == 2 and "configs is a directory, not a config file" in result.stderr


# --------------------------------------------------------------------------------- speed, no torch
def test_validate_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys\n"
        "from llmft.cli.main import main\n"
        "rc = main(['validate', 'configs/example_config.json'])\n"
        "heavy = ('torch', 'transformers', 'peft', 'datasets', 'accelerate')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print('RC', rc, 'HEAVY', ','.join(heavy) or '-')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1] == "RC 0 HEAVY -", result.stdout + result.stderr


def test_validate_is_fast() -> None:
    """The issue asks for < 1 s. Measured as the child's CPU time (user + sys), which a busy machine
    does not inflate the way it does wall time; the median of three runs."""
    cpu = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_cli("validate", "configs/example_config.json")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert result.returncode == 0
    assert statistics.median(cpu) < 1.0, cpu
