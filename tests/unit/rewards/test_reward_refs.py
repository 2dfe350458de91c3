"""``check_reward_refs``: user rewards named by reference found and their signatures checked without
running them, and every mistake named with its path, place and fix; built-in names and args checked too."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import llmft
from llmft.errors import ConfigError, Problem
from llmft.rewards import RewardSpec, build_rewards, check_reward_refs

SRC = Path(llmft.__file__).parents[1]

# As TRL's GRPO docs write rewards: the data's columns arrive as keywords, **kwargs takes the rest.
TRL_STYLE = '''
import re


def format_reward_func(completions, **kwargs):
    """1.0 for <think>...</think><answer>...</answer>."""
    pattern = r"^<think>.*?</think><answer>.*?</answer>$"
    completion_contents = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, content) for content in completion_contents]
    return [1.0 if match else 0.0 for match in matches]


def reward_func(completions, ground_truth, **kwargs):
    matches = [re.search(r"\\\\boxed\\{(.*?)\\}", completion) for completion in completions]
    contents = [match.group(1) if match else "" for match in matches]
    return [1.0 if c == gt else 0.0 for c, gt in zip(contents, ground_truth)]


async def judge(prompts, completions, **kwargs):
    return [0.5 for _ in completions]


length_reward = lambda completion_ids, **kwargs: [float(len(ids)) for ids in completion_ids]  # noqa: E731
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def check(function: str, folder: Path, **kwargs: object) -> list[Problem]:
    return check_reward_refs([RewardSpec(function)], folder, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["format_reward_func", "reward_func", "judge", "length_reward"])
def test_trl_style_functions_in_a_file_pass(tmp_path: Path, name: str) -> None:
    write(tmp_path, "rewards/mine.py", TRL_STYLE)
    assert check(f"rewards/mine.py:{name}", tmp_path) == []


def test_the_file_is_relative_to_the_config_folder_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(
        tmp_path,
        "r.py",
        f"open({str(marker)!r}, 'w').close()\n\ndef reward(completions, **kwargs):\n    return []\n",
    )
    assert check("r.py:reward", tmp_path) == []
    assert not marker.exists()
    problem = check("r.py:reward", tmp_path / "elsewhere")[0]
    assert problem.message == f"reward file `r.py` not found (looked at {tmp_path / 'elsewhere' / 'r.py'})"


@pytest.mark.parametrize(
    ("source", "function", "message", "fix", "line"),
    [
        (None, "missing.py:f", "reward file `missing.py` not found", "give the path relative", None),
        (
            "def f(completions, **kwargs)\n    return []\n",
            "bad.py:f",
            "`bad.py` has a syntax error: expected ':'",
            "fix the file",
            1,
        ),
        (
            TRL_STYLE,
            "bad.py:reward",
            "`bad.py` defines no `reward`",
            "functions there: format_reward_func, judge, reward_func",
            None,
        ),
        (
            "def f(completions):\n    return []\n",
            "bad.py:f",
            "reward `bad.py:f` does not take **kwargs, and it is passed prompts, completions, "
            "completion_ids and every column by keyword: it has no parameter `prompts`, `completion_ids`",
            "give it TRL's signature: def reward(completions, **kwargs)",
            1,
        ),
        (
            "def f(prompts, /, completions, **kwargs):\n    return []\n",
            "bad.py:f",
            "reward `bad.py:f` takes `prompts` as a positional-only parameter, but rewards are called with "
            "keywords only (prompts=, completions=, completion_ids=, one per column)",
            "give it TRL's signature",
            1,
        ),
    ],
)
def test_bad_files_are_named_with_the_place_and_a_fix(
    tmp_path: Path, source: str | None, function: str, message: str, fix: str, line: int | None
) -> None:
    if source is not None:
        write(tmp_path, "bad.py", source)
    [problem] = check(function, tmp_path)
    assert problem.path == "training.rl.rewards[0].function"
    assert problem.message.startswith(message), problem.message
    assert (problem.fix or "").startswith(fix)
    assert problem.severity == "error"
    assert problem.location == (f"{tmp_path / 'bad.py'}:{line}" if line else problem.location)


def test_known_columns_are_checked_against_the_parameters(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.py",
        TRL_STYLE + "\n\ndef named(prompts, completions, completion_ids, answer):\n    return []\n",
    )
    assert check("r.py:reward_func", tmp_path, columns=["ground_truth"]) == []
    [missing] = check("r.py:reward_func", tmp_path, columns=["answer"])
    assert missing.message == (
        "reward `r.py:reward_func` requires `ground_truth`, which no column of the data is (columns: answer)"
    )
    assert check("r.py:named", tmp_path, columns=["answer"]) == []  # every keyword named: no **kwargs needed
    [extra] = check("r.py:named", tmp_path, columns=["answer", "level"])
    assert extra.message.endswith("it has no parameter `level`")


def test_a_name_made_by_a_call_in_a_file_is_left_to_the_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.py",
        "import functools\n\ndef base(completions, scale, **kw):\n    return []\n\n"
        "scaled = functools.partial(base, scale=2)\n",
    )
    [notice] = check("r.py:scaled", tmp_path)
    assert notice.severity == "notice" and notice.location == f"{tmp_path / 'r.py'}:6"
    assert (
        notice.message
        == "reward `r.py:scaled` is made by an assignment, so its signature is checked when the run starts"
    )


def test_trl_own_reward_is_found_through_its_lazy_package_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from llmft.rewards import RewardSpec, check_reward_refs\n"
        "problems = check_reward_refs([RewardSpec('trl.rewards:think_format_reward')], '.')\n"
        "assert problems == [], problems\n"
        "heavy = {'torch', 'trl', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC), "PATH": ""})


def test_checking_a_file_reference_imports_no_torch(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.py",
        "import torch\n\ndef reward(completions, **kwargs):\n    return torch.zeros(1).tolist()\n",
    )
    code = (
        "import sys\n"
        "from llmft.rewards import RewardSpec, check_reward_refs\n"
        f"entries = [RewardSpec('r.py:reward'), RewardSpec('answer_match', args={{'mode': 'numeric'}}),\n"
        "           RewardSpec('reward_model', args={'run': 'no-run'})]\n"
        f"problems = check_reward_refs(entries, {str(tmp_path)!r})\n"
        "assert [p.path for p in problems] == ['training.rl.rewards[2].args.run'], problems\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC), "PATH": ""})


def test_module_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "mypkg/__init__.py", "from .scoring import exact as exact_reward\nmade = None\n")
    write(tmp_path, "mypkg/scoring.py", "def exact(completions, answer, **kwargs):\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check("mypkg:exact_reward", tmp_path) == []  # the re-export is followed to its def
    assert check("mypkg.scoring:exact", tmp_path) == []
    [missing] = check("nopkg.scoring:exact", tmp_path)
    assert missing.message == "no module `nopkg.scoring` can be imported here"
    [absent] = check("mypkg.scoring:inexact", tmp_path)
    assert absent.message == "`scoring.py` defines no `inexact`" and absent.fix == "functions there: exact"
    # `made` is no def: the module is imported to ask, and None is no function
    [made] = check("mypkg:made", tmp_path)
    assert made.message == "`mypkg:made` is a NoneType, not a function"


def test_builtins_and_args_in_one_report(tmp_path: Path) -> None:
    entries = [
        RewardSpec("answer_match", args={"mode": "numeric", "tolerance": 0.01}),
        RewardSpec("answer_mach"),
        RewardSpec("r.py:reward", args={"scale": 2}),
        RewardSpec("file.py:"),
    ]
    write(tmp_path, "r.py", "def reward(completions, **kwargs):\n    return []\n")
    problems = check_reward_refs(entries, tmp_path)
    assert [(p.path, p.message) for p in problems] == [
        ("training.rl.rewards[1].function", "unknown built-in reward `answer_mach`"),
        (
            "training.rl.rewards[2].args",
            "`args` are for built-in rewards; `r.py:reward` is called with the data's columns",
        ),
        ("training.rl.rewards[3].function", "`file.py:` is not a reward reference"),
    ]
    assert problems[0].fix.startswith("did you mean `answer_match`? built-ins: answer_match, format, length")


def test_build_refuses_what_the_check_refuses_all_at_once(tmp_path: Path) -> None:
    write(tmp_path, "r.py", "def f(completions):\n    return []\n")
    with pytest.raises(ConfigError) as err:
        build_rewards([RewardSpec("r.py:f"), RewardSpec("length")], tmp_path)
    assert [p.path for p in err.value.problems] == [
        "training.rl.rewards[0].function",
        "training.rl.rewards[1].args.max",
    ]
    assert err.value.exit_code == 2


def test_build_checks_the_real_signature_of_a_function_made_by_a_call(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.py",
        "import functools\n\ndef base(completions, scale):\n    return []\n\n"
        "scaled = functools.partial(base, scale=2)\n\nraiser = None\n",
    )
    with pytest.raises(ConfigError, match=r"reward `r.py:scaled` does not take \*\*kwargs") as err:
        build_rewards([RewardSpec("r.py:scaled")], tmp_path)
    assert err.value.problems[0].path == "training.rl.rewards[0].function"


def test_a_file_that_raises_on_load_says_so(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.py",
        "raise RuntimeError('needs a GPU')\n\ndef reward(completions, **kwargs):\n    return []\n",
    )
    with pytest.raises(ConfigError, match="running `r.py` raised RuntimeError: needs a GPU"):
        build_rewards([RewardSpec("r.py:reward")], tmp_path)


def test_naming_every_keyword_without_kwargs_is_a_notice_until_the_columns_are_known(tmp_path: Path) -> None:
    write(tmp_path, "r.py", "def named(prompts, completions, completion_ids):\n    return []\n")
    [notice] = check("r.py:named", tmp_path)
    assert notice.severity == "notice"
    assert notice.message == (
        "reward `r.py:named` takes no **kwargs, so it works only if the data has no column besides prompt "
        "and the trainer passes nothing else by keyword"
    )
    assert check("r.py:named", tmp_path, columns=[]) == []
    assert build_rewards([RewardSpec("r.py:named")], tmp_path)[0].name == "named"
