"""One contender's run in its own process: ``python -m llmft.bench.worker SPEC.json RESULT.json``.

The parent records the launch time and, after the child exits, its own ``ru_maxrss`` (``os.wait4``), so
the peak RSS is this process's alone. Here: install the probes, train, evaluate, write the result.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[0] == "--peak":  # python -m llmft.bench.worker --peak THREADS SECONDS: the matmul peak as JSON
        from llmft.bench.flops import matmul_peak

        print(json.dumps(matmul_peak(int(argv[1]), seconds=float(argv[2]))))
        return 0
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    import torch

    torch.set_num_threads(spec["threads"])
    from llmft.bench.contenders import RUNNERS, encoded_splits, eval_loss
    from llmft.bench.flops import count_model
    from llmft.bench.probe import Probe, backbone_classes, steady_state
    from llmft.config.schema import RunConfig

    name = spec["contender"]
    config = RunConfig.model_validate(spec["config"])
    out = Path(spec["out_dir"])
    probe = Probe(pad_id=spec["pad_id"])
    wall0, perf0 = time.time(), time.perf_counter()
    probe.install(backbone_classes())
    trained_at, cpu_at = time.perf_counter(), time.process_time()
    model = RUNNERS[name](name, config, spec["batch_size"], out)
    train_seconds = time.perf_counter() - trained_at
    train_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # before the (shared) evaluation
    probe.remove()
    steady = steady_state(probe.steps, spec["warmup"], trained_at, cpu_at, spec["threads"])
    _, _, validation = encoded_splits(config)
    loss, loss_tokens = eval_loss(model, validation, spec["pad_id"])
    first_step_wall = wall0 + (probe.steps[0].end - perf0)
    losses_file = out / "step_losses.json"
    step_losses = json.loads(losses_file.read_text(encoding="utf-8")) if losses_file.exists() else []
    result = {
        "contender": name,
        "round": spec["round"],
        "steps": len(probe.steps),
        "step_seconds": [
            b - a
            for a, b in zip(
                [trained_at] + [s.end for s in probe.steps[:-1]], [s.end for s in probe.steps], strict=True
            )
        ],
        "step_real_tokens": [s.tokens for s in probe.steps],
        "all_real_tokens": sum(s.tokens for s in probe.steps),
        "train_seconds": train_seconds,
        "train_peak_rss_mb": train_rss,
        "time_to_first_step_s": first_step_wall - spec["launch_time"],
        "eval_loss": loss,
        "eval_loss_tokens": loss_tokens,
        "flops": count_model(model).to_dict(),
        "batch_size": spec["batch_size"],
        "step_losses": step_losses,
        **({"last_step_loss": step_losses[-1]} if step_losses else {}),
        **steady,
    }
    Path(argv[1]).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
