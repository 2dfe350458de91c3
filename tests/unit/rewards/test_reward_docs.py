"""docs/REWARDS.md is generated from the built-ins table and must be current."""

from __future__ import annotations

from pathlib import Path

from llmft.rewards.docs import markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "REWARDS.md"
REGENERATE = (
    "python -c \"from llmft.rewards.docs import markdown; print(markdown(), end='')\" > docs/REWARDS.md"
)


def test_rewards_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), f"regenerate it: {REGENERATE}"


def test_every_builtin_and_argument_is_on_the_page() -> None:
    page = markdown()
    for name in ("answer_match", "format", "length", "json_valid", "reward_model"):
        assert f"### `{name}`" in page
    assert (
        "| `tolerance` | `1e-06` | numeric mode: the largest absolute difference that still matches |" in page
    )
    assert "| `run` | required |" in page and "| `device` | `null` |" in page


def test_the_pages_example_passes_the_check(tmp_path: Path) -> None:
    import yaml

    from llmft.rewards import RewardSpec, check_reward_refs

    block = markdown().split("```yaml\n")[1].split("```")[0]
    entries = [
        RewardSpec(e["function"], e.get("weight", 1.0), e.get("args", {}))
        for e in yaml.safe_load(block)["training"]["rl"]["rewards"]
    ]
    (tmp_path / "rewards.py").write_text(markdown().split("```python\n")[1].split("```")[0], encoding="utf-8")
    assert check_reward_refs(entries, tmp_path) == []
