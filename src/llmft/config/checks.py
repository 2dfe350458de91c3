"""Rules across config sections, as plain functions returning problems (errors or warnings).

Rules about one field live in the schema; rules needing the machine's packages or files live in the
doctor and ``validate --deep``. The CUDA check here is a cheap file probe (no torch import).
"""

from __future__ import annotations

import copy
import os
import shutil

from pydantic import ValidationError

from llmft.config.distributed import check_distributed
from llmft.config.metrics import GENERATION_SCORES, missing_scoring_packages
from llmft.config.objective_rules import (
    data_refusal,
    task_refusal,
    unused_message,
    unused_settings,
)
from llmft.config.objectives import ROWS
from llmft.config.render import problems_from, show, walk_loc
from llmft.config.rl_checks import check_rl
from llmft.config.schema import RunConfig
from llmft.config.search_checks import check_search
from llmft.config.space import Space, SpaceError, parse_space
from llmft.config.tracker_packages import check_tracking
from llmft.errors import Problem

CLASSIFIER_ONLY_METRICS = {"precision", "recall", "f1", "f1_macro"}  # accuracy: next-token for an LM
LM_METRICS = {"perplexity"}


def cuda_probably_available() -> bool:
    """A torch-free guess used only for warnings: an NVIDIA driver or CUDA_VISIBLE_DEVICES."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def check_metrics_fit_task(config: RunConfig) -> list[Problem]:
    metrics = set(config.evaluation.metrics or [])
    task = config.model.task
    if task in ("causal_lm", "seq2seq_lm") and metrics & CLASSIFIER_ONLY_METRICS:
        bad = sorted(metrics & CLASSIFIER_ONLY_METRICS)
        verb = "needs" if len(bad) == 1 else "need"
        message = f"{', '.join(bad)} {verb} a classification task, but model.task is {task}"
        fix = (
            "use loss/perplexity/accuracy (next-token accuracy for a language model), "
            "or set model.task: sequence_classification"
        )
        return [Problem("evaluation.metrics", message, fix=fix)]
    if task == "sequence_classification" and metrics & LM_METRICS:
        return [
            Problem(
                "evaluation.metrics",
                "perplexity needs a language-model task, but the task is sequence_classification",
                fix="use accuracy/precision/recall/f1",
            )
        ]
    return []


def bitsandbytes_cpu_ready() -> bool:
    """A torch-free guess: bitsandbytes >= 0.46.1 is installed, the first release with CPU kernels."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("bitsandbytes")
    except PackageNotFoundError:
        return False
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in found.split(".")[:3]]
    return tuple(parts) >= (0, 46, 1)


def check_qlora(config: RunConfig) -> list[Problem]:
    """A quantised base without CUDA needs bitsandbytes' CPU kernels; without them, training would stop."""
    if config.model.resolved_quantization() is None or cuda_probably_available() or bitsandbytes_cpu_ready():
        return []
    path = "model.quantization" if config.model.quantization is not None else "model.adapter.type"
    return [
        Problem(
            path,
            "a quantised base (qlora) needs bitsandbytes >= 0.46.1 on a machine without CUDA, and it is not "
            "installed; training will stop before loading the model",
            fix="run `pip install 'llmft[quant]'`, or use `type: lora` without model.quantization",
            severity="warning",
        )
    ]


def check_evaluation_needed(config: RunConfig) -> list[Problem]:
    tr = config.training
    if tr.early_stopping_patience is not None and tr.eval_strategy == "no":
        return [
            Problem(
                "training.early_stopping_patience",
                "early stopping needs evaluations, but eval_strategy is `no`",
                fix="set training.eval_strategy: epoch or steps",
            )
        ]
    return []


def check_packing(config: RunConfig) -> list[Problem]:
    """Packing is for causal-LM rows and for preference sequences (a reward model's pairs included)."""
    row = ROWS.get(config.training.objective)
    preference = row is not None and row.preference
    task = config.model.task
    if config.data.packing and task in ("sequence_classification", "seq2seq_lm") and not preference:
        return [
            Problem(
                "data.packing",
                f"packing applies to causal-LM training, not {config.model.task}",
                fix="set data.packing: false",
            )
        ]
    return []


def check_generation_eval(config: RunConfig) -> list[Problem]:
    """evaluation.generate needs a generating task, its scoring packages, and every_eval to steer training."""
    cfg = config.evaluation.generate
    problems: list[Problem] = []
    if cfg is None:
        return problems
    if config.model.task == "sequence_classification":
        problems.append(
            Problem(
                "evaluation.generate",
                "evaluation by generation needs a model that generates text, and model.task is "
                "sequence_classification",
                fix="remove evaluation.generate (classification is scored by evaluation.metrics)",
            )
        )
    missing = missing_scoring_packages()
    if missing:
        problems.append(
            Problem(
                "evaluation.generate",
                f"scoring generations needs {' and '.join(missing)}, which are not installed",
                fix="pip install 'llmft[eval]'",
            )
        )
    tr = config.training
    for key, metric in (
        ("save_best_metric", tr.save_best_metric),
        ("early_stopping_metric", tr.early_stopping_metric),
    ):
        watched = key == "save_best_metric" or tr.early_stopping_patience is not None
        if watched and metric and metric.split("_", 1)[-1] in GENERATION_SCORES and cfg.when != "every_eval":
            problems.append(
                Problem(
                    f"training.{key}",
                    f"{metric} is only measured at the end with evaluation.generate.when: end",
                    fix="set evaluation.generate.when: every_eval",
                )
            )
    return problems


def _objective_problems(objective: str, config: RunConfig) -> list[Problem]:
    """An explicit objective against the data format and the model task (objective_rules.py)."""
    found = [
        (path, refusal)
        for path, refusal in (
            ("training.objective", data_refusal(objective, config.data.preprocessing.format, declared=True)),
            ("model.task", task_refusal(objective, config.model.task)),
        )
        if refusal
    ]
    return [Problem(path, message, fix=fix) for path, (message, fix) in found[:1]]


def check_preference(config: RunConfig) -> list[Problem]:
    """training.objective and training.preference against each other and the data/model sections."""
    objective = config.training.objective
    if objective == "auto":  # decided from the data at run time, and checked there
        return []
    problems = _objective_problems(objective, config)
    unused = unused_settings(objective, config.training.preference)
    if unused:
        message, fix = unused_message(objective, unused)
        problems.append(Problem(f"training.preference.{unused[0]}", message, fix=fix))
    return problems


def _field_exists(path: str) -> bool:
    found = walk_loc(tuple(path.split(".")))
    return found.model is not None and found.key in found.model.model_fields


def _probe(raw: dict[str, object], path: str, value: object) -> Problem | None:
    """Validate the config with one value substituted; returns the problem at that path, if any."""
    trial = copy.deepcopy(raw)
    node = trial
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})  # type: ignore[assignment]
        if not isinstance(node, dict):
            return None
    node[parts[-1]] = value
    try:
        RunConfig.model_validate(trial)
    except ValidationError as err:
        for problem in problems_from(err):
            if problem.path == path or problem.path.startswith(path):
                return problem
    return None


SPACE_EXAMPLE = '["float", 1e-5, 1e-3, "log"]'
LEGACY_SPACE_KINDS = ("float", "loguniform", "uniform", "int", "randint", "choice", "categorical")


def _space_shape_problem(spec: object, space: Space) -> str | None:
    """Shapes parse_space accepts but that cannot be meant (a legacy list missing a bound, an empty range)."""
    legacy_kind = isinstance(spec, list) and bool(spec) and spec[0] in LEGACY_SPACE_KINDS
    if legacy_kind and space.kind == "choice" and spec[0] in space.choices:  # type: ignore[index]
        return f'a legacy ["{spec[0]}", ...] space needs its bounds (or choices) after the kind'
    if space.kind != "choice" and space.low > space.high:
        return f"the range is empty: low {space.low:g} is above high {space.high:g}"
    if space.log and space.low <= 0:
        return "a log range needs low > 0"
    if space.step is not None and space.step <= 0:
        return f"the step must be > 0, got {space.step:g}"
    return None


def check_hpo(config: RunConfig, raw: dict[str, object]) -> list[Problem]:
    hpo = config.hpo
    problems: list[Problem] = []
    if hpo.enabled and not hpo.parameters:
        problems.append(
            Problem(
                "hpo.parameters",
                "hpo is enabled but no parameters are given to search",
                fix="add e.g. `training.learning_rate: [1e-4, 3e-4]`, or set hpo.enabled: false",
            )
        )
    for name, spec in hpo.parameters.items():
        where = f"hpo.parameters.{name}"
        try:
            space = parse_space(name, spec)
        except SpaceError as err:
            fix = f"write e.g. {{low: 1e-5, high: 1e-3, log: true}}, {SPACE_EXAMPLE} or a list [1e-4, 3e-4]"
            problems.append(Problem(where, str(err), fix))
            continue
        except (TypeError, ValueError, ArithmeticError):  # ["float", "a", "b"]: bounds that are not numbers
            fix = f"write e.g. {SPACE_EXAMPLE} or {{low: 1e-5, high: 1e-3, log: true}}"
            message = f"cannot read the space {show(spec)}: its bounds must be numbers"
            problems.append(Problem(where, message, fix))
            continue
        shape = _space_shape_problem(spec, space)
        if shape:
            problems.append(Problem(where, shape, fix=f"write e.g. {SPACE_EXAMPLE} or [1e-4, 3e-4]"))
            continue
        if not _field_exists(space.path):
            problems.append(
                Problem(
                    where,
                    f"`{space.path}` is not a config field",
                    fix="use a dotted path such as training.learning_rate or model.adapter.r",
                )
            )
            continue
        for value in space.probe_values():
            found = _probe(raw, space.path, value)
            if found:
                rejected = f"value {show(value)} is rejected by `{space.path}`: {found.message}"
                accepted = f": {found.fix}" if found.fix else ""
                fix = f"search only values `{space.path}` accepts{accepted}"
                problems.append(Problem(where, rejected, fix))
                break
    return problems


def check_config(config: RunConfig, raw: dict[str, object]) -> list[Problem]:
    """Every cross-section rule; ``raw`` is the normalised dict the config was built from."""
    return [
        *check_metrics_fit_task(config),
        *check_qlora(config),
        *check_evaluation_needed(config),
        *check_packing(config),
        *check_distributed(config),
        *check_generation_eval(config),
        *check_preference(config),
        *check_rl(config),
        *check_hpo(config, raw),
        *(check_search(config) if config.hpo.enabled else []),
        *check_tracking(config),
    ]
