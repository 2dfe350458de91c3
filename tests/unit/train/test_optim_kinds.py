"""Each optimizer `training.optimizer` accepts trains: adamw, sgd, adafactor (transformers), adamw_8bit
(bitsandbytes, CPU kernels); Adafactor is built exactly as the Hugging Face Trainer builds it."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from llmft.config.schema import TrainingConfig
from llmft.errors import EnvironmentProblem
from llmft.train.optim import build_optimizer

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def toy() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A linear regression with 8192 weights: above bitsandbytes' 4096-value floor for 8-bit state."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.LayerNorm(64))
    x = torch.randn(32, 128)
    y = torch.randn(32, 64)
    return model, x, y


def losses(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> list[float]:
    out = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(float(loss.detach()))
    return out


@pytest.mark.parametrize(
    ("name", "lr"),
    [
        ("adamw", 1e-2),
        ("sgd", 5e-2),
        ("adafactor", 1e-2),
        pytest.param(
            "adamw_8bit",
            1e-2,
            marks=pytest.mark.skipif(
                not HAS_BNB, reason="bitsandbytes is optional (pip install bitsandbytes)"
            ),
        ),
    ],
)
def test_each_optimizer_lowers_the_loss(name: str, lr: float) -> None:
    model, x, y = toy()
    opt = build_optimizer(model, TrainingConfig(optimizer=name, learning_rate=lr, weight_decay=0.01))
    seen = losses(model, opt, x, y)
    assert all(torch.isfinite(torch.tensor(seen)))
    assert seen[-1] < 0.8 * seen[0], seen


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is optional (pip install bitsandbytes)")
def test_adamw_8bit_keeps_8bit_state() -> None:
    model, x, y = toy()
    opt = build_optimizer(model, TrainingConfig(optimizer="adamw_8bit", learning_rate=1e-3))
    losses(model, opt, x, y)
    state = opt.state[model[0].weight]
    assert state["state1"].dtype == torch.uint8 and state["state2"].dtype == torch.uint8


def test_adafactor_matches_the_hugging_face_trainer_setup() -> None:
    """The Trainer builds Adafactor(lr=..., scale_parameter=False, relative_step=False): same steps here."""
    from transformers.optimization import Adafactor

    model, x, y = toy()
    ours = losses(
        model, build_optimizer(model, TrainingConfig(optimizer="adafactor", learning_rate=1e-2)), x, y
    )
    model, x, y = toy()
    reference = Adafactor(model.parameters(), lr=1e-2, scale_parameter=False, relative_step=False)
    assert ours == pytest.approx(losses(model, reference, x, y), rel=1e-5)


def test_adamw_8bit_without_bitsandbytes_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    model, _, _ = toy()
    with pytest.raises(EnvironmentProblem) as err:
        build_optimizer(model, TrainingConfig(optimizer="adamw_8bit"))
    assert err.value.message.startswith(
        "training.optimizer: adamw_8bit needs bitsandbytes, which is not installed"
    )
    assert err.value.fix == "pip install bitsandbytes (CPU or GPU), or set training.optimizer: adamw"
