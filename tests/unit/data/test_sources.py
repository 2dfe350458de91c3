"""Data sources: local files of every format, split files and `dir`, folders saved with `save_to_disk`, the
Hub (its offline error, and its working path with `datasets.load_dataset` faked at the network boundary),
and the seeded validation carve-out."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from llmft.config.load import load_config
from llmft.config.schema import DatasetConfig
from llmft.data.sources import file_format, load_splits, read_local_rows, rows_to_dataset
from llmft.errors import DataError

REPO = Path(__file__).resolve().parents[3]
ROWS = [{"text": f"row number {i}", "label": f"class{i % 3}"} for i in range(20)]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write rows in the format the file's extension names."""
    suffix = path.suffix
    if suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ","
            )
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(f"{r['text']}\n" for r in rows), encoding="utf-8")
    return path


def _load(seed: int = 0, **fields: object):
    return load_splits(DatasetConfig(**fields), seed)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".tsv", ".parquet"])
def test_every_local_format_gives_the_same_rows(suffix: str, tmp_path: Path) -> None:
    path = _write(tmp_path / f"train{suffix}", ROWS)

    raw = _load(train_file=str(path), validation_fraction=0)

    assert raw.train.to_list() == ROWS
    assert raw.validation is None and raw.test is None
    assert raw.origin == str(path)


def test_a_text_file_is_one_row_per_non_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("first line\n\n   \nsecond line\r\nthird line", encoding="utf-8")

    raw = _load(train_file=str(path), validation_fraction=0)

    assert raw.train.to_list() == [{"text": "first line"}, {"text": "second line"}, {"text": "third line"}]


def test_shared_demo_files_load(shared_data_dir: Path) -> None:
    alpaca = _load(train_file=str(shared_data_dir / "alpaca_en_demo.json"), validation_fraction=0)
    wiki = _load(train_file=str(shared_data_dir / "wiki_demo.txt"), validation_fraction=0)

    assert len(alpaca.train) == 999
    assert set(alpaca.train.column_names) == {"instruction", "input", "output"}
    assert wiki.train.column_names == ["text"] and len(wiki.train) > 0


def test_declared_file_format_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "rows.data"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")

    assert file_format(path, "jsonl") == "jsonl"
    assert _load(train_file=str(path), file_format="jsonl", validation_fraction=0).train.to_list() == ROWS
    with pytest.raises(DataError, match=r"cannot tell the format of .*rows\.data") as err:
        _load(train_file=str(path))
    assert "file_format" in str(err.value.fix)


def test_json_accepts_a_wrapped_list_and_json_lines(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 1, "data": ROWS[:3]}), encoding="utf-8")
    lines = tmp_path / "lines.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]), encoding="utf-8")

    assert read_local_rows(wrapped, "json") == ROWS[:3]
    assert read_local_rows(lines, "json") == ROWS[:3]


def test_rows_may_lack_optional_keys(tmp_path: Path) -> None:
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d", "system": "be brief"}]

    dataset = rows_to_dataset(rows, tmp_path / "x.jsonl")

    assert dataset.to_list() == [{**rows[0], "system": None}, rows[1]]


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode())

    assert read_local_rows(path, "jsonl") == [ROWS[0]]


def test_split_files_are_used_as_given(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", ROWS[:10])
    validation = _write(tmp_path / "validation.jsonl", ROWS[10:15])
    test = _write(tmp_path / "test.csv", ROWS[15:])

    raw = _load(train_file=str(train), validation_file=str(validation), test_file=str(test))

    assert raw.train.to_list() == ROWS[:10]
    assert raw.validation.to_list() == ROWS[10:15]
    assert raw.test.to_list() == ROWS[15:]
    assert not raw.validation_carved
    assert raw.where("validation") == f"{validation} (validation split)"
    assert raw.where("test") == f"{test} (test split)"


def test_dir_holds_the_split_files(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder / "train.jsonl", ROWS[:10])
    _write(folder / "dev.jsonl", ROWS[10:])

    raw = _load(dir=str(folder), train_file="train.jsonl", validation_file="dev.jsonl")

    assert raw.origin == str(folder / "train.jsonl")
    assert len(raw.train) == 10 and len(raw.validation) == 10


def test_a_missing_file_lists_the_files_that_are_there(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", ROWS)

    with pytest.raises(DataError, match=r"data file not found: .*trian\.jsonl\. Files in .*: train\.jsonl"):
        _load(train_file=str(tmp_path / "trian.jsonl"))


# ------------------------------------------------------------------------------------ validation carve-out
def test_validation_is_carved_off_train_with_the_fraction(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    raw = _load(train_file=str(path), validation_fraction=0.25)

    assert raw.validation_carved
    assert (len(raw.train), len(raw.validation)) == (15, 5)
    texts = [r["text"] for r in raw.train.to_list() + raw.validation.to_list()]
    assert sorted(texts) == sorted(r["text"] for r in ROWS)


def test_the_carve_out_is_seeded(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    first, again, other = (_load(seed, train_file=str(path)) for seed in (7, 7, 8))

    assert first.validation.to_list() == again.validation.to_list()
    assert first.train.to_list() == again.train.to_list()
    assert first.validation.to_list() != other.validation.to_list()


def test_carved_rows_keep_their_numbers_in_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    raw = _load(train_file=str(path), validation_fraction=0.3)

    for split, dataset in (("train", raw.train), ("validation", raw.validation)):
        numbers = raw.row_numbers[split]
        assert [ROWS[n - 1] for n in numbers] == dataset.to_list()
    assert sorted(raw.row_numbers["train"] + raw.row_numbers["validation"]) == list(range(1, 21))
    assert raw.where("validation") == f"{path} (validation split)"


def test_no_carve_out_with_fraction_zero_or_a_validation_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    assert _load(train_file=str(path), validation_fraction=0).validation is None
    assert _load(train_file=str(path), validation_file=str(path)).validation_carved is False


def test_max_train_rows_keeps_the_first_rows_before_the_carve_out(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    capped = _load(train_file=str(path), max_train_rows=5, validation_fraction=0)
    carved = _load(train_file=str(path), max_train_rows=10, validation_fraction=0.2)

    assert capped.train.to_list() == ROWS[:5]
    assert (len(carved.train), len(carved.validation)) == (8, 2)
    assert sorted(carved.row_numbers["train"] + carved.row_numbers["validation"]) == list(range(1, 11))


def test_max_eval_rows_caps_validation_and_test(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS)

    raw = _load(train_file=str(path), validation_file=str(path), test_file=str(path), max_eval_rows=3)
    carved = _load(train_file=str(path), validation_fraction=0.5, max_eval_rows=4)

    assert (len(raw.train), len(raw.validation), len(raw.test)) == (20, 3, 3)
    assert len(carved.validation) == 4 and len(carved.row_numbers["validation"]) == 4


# ---------------------------------------------------------------------------------------- save_to_disk
@pytest.fixture
def saved_dict(tmp_path: Path) -> Path:
    import datasets

    path = tmp_path / "saved_dict"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS[:12]),
            "dev": datasets.Dataset.from_list(ROWS[12:16]),
            "test": datasets.Dataset.from_list(ROWS[16:]),
        }
    ).save_to_disk(str(path))
    return path


def test_a_saved_dataset_dict_gives_its_splits(saved_dict: Path) -> None:
    raw = _load(path=str(saved_dict))

    assert raw.train.to_list() == ROWS[:12]
    assert raw.validation.to_list() == ROWS[12:16]  # `dev` is taken as the validation split
    assert raw.test.to_list() == ROWS[16:]
    assert not raw.validation_carved and raw.origin == str(saved_dict)


def test_split_names_and_slices_of_a_saved_dataset_dict(saved_dict: Path) -> None:
    raw = _load(
        path=str(saved_dict), split={"train": "train[2:6]", "validation": "test", "test": "dev[:50%]"}
    )

    assert raw.train.to_list() == ROWS[2:6]
    assert raw.validation.to_list() == ROWS[16:]
    assert raw.test.to_list() == ROWS[12:14]


def test_an_unknown_split_lists_the_saved_ones(saved_dict: Path) -> None:
    with pytest.raises(
        DataError, match=r"split `valid` not in the saved dataset; it has train, dev, test"
    ) as err:
        _load(path=str(saved_dict), split={"validation": "valid"})
    assert "data.dataset.split.validation" in str(err.value.fix)
    with pytest.raises(DataError, match=r"cannot read the slice `\[1-2\]`"):
        _load(path=str(saved_dict), split={"train": "train[1-2]"})


def test_a_saved_single_dataset_is_train_and_validation_is_carved(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(path))

    raw = _load(path=str(path), validation_fraction=0.2)
    sliced = _load(path=str(path), split={"train": "train[:10]"}, validation_fraction=0)

    assert raw.validation_carved and (len(raw.train), len(raw.validation)) == (16, 4)
    assert sliced.train.to_list() == ROWS[:10]


def test_a_folder_that_is_not_a_saved_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a dataset saved with save_to_disk"):
        _load(path=str(tmp_path / "empty"))
    with pytest.raises(DataError, match="saved dataset folder not found"):
        _load(path=str(tmp_path / "nowhere"))


# ------------------------------------------------------------------------------------------------- hub
@pytest.mark.parametrize("name, subset", [("imdb", None), ("nyu-mll/glue", "sst2")])
def test_a_hub_dataset_offline_is_a_data_error(name: str, subset: str | None) -> None:
    with pytest.raises(DataError, match=f"dataset `{name}` is not available offline") as err:
        _load(name=name, subset=subset)
    assert "save_to_disk" in str(err.value.fix)


class FakeHub:
    """Stands in for `datasets.load_dataset` (the network boundary): records each call and serves rows
    from an in-memory `DatasetDict`, slicing `train[10:20]`-style split names as the Hub does."""

    def __init__(self, splits: dict[str, list[dict[str, object]]]) -> None:
        import datasets

        self.data = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
        self.calls: list[dict[str, object]] = []

    def __call__(self, path: str, name: str | None = None, *, split: str | None = None, **kwargs: object):
        self.calls.append({"path": path, "name": name, "split": split, **kwargs})
        if split is None:
            return self.data
        base, start, stop = re.fullmatch(r"(\w+)(?:\[(\d*):(\d*)\])?", split).groups()
        if base not in self.data:
            raise ValueError(f'Unknown split "{base}". Should be one of {list(self.data)}.')
        rows = range(len(self.data[base]))[int(start or 0) : int(stop) if stop else None]
        return self.data[base].select(rows)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Install a FakeHub holding ``ROWS`` as `train` and a separate 450-row `test` split."""
    import datasets

    test = [{"text": f"test row {i}", "label": f"class{i % 3}"} for i in range(450)]
    fake = FakeHub({"train": ROWS, "test": test})
    monkeypatch.setattr(datasets, "load_dataset", fake)
    return fake


def test_a_hub_dataset_is_loaded_by_name_and_subset(hub: FakeHub) -> None:
    raw = _load(name="nyu-mll/glue", subset="sst2", validation_fraction=0)

    assert hub.calls == [{"path": "nyu-mll/glue", "name": "sst2", "split": "train", "token": None}]
    assert raw.train.to_list() == ROWS
    assert raw.validation is None and raw.test is None
    assert raw.origin == "hub:nyu-mll/glue/sst2"
    assert raw.where("train") == "hub:nyu-mll/glue/sst2 (train split)"


def test_a_hub_dataset_without_validation_gets_one_carved_with_the_seed(hub: FakeHub) -> None:
    first, again, other = (_load(seed, name="imdb", validation_fraction=0.25) for seed in (3, 3, 4))

    assert [c["split"] for c in hub.calls] == ["train"] * 3  # no validation or test split is asked for
    assert first.validation_carved and (len(first.train), len(first.validation)) == (15, 5)
    assert sorted(r["text"] for r in first.train.to_list() + first.validation.to_list()) == sorted(
        r["text"] for r in ROWS
    )
    assert first.validation.to_list() == again.validation.to_list()
    assert first.validation.to_list() != other.validation.to_list()
    for split, dataset in (("train", first.train), ("validation", first.validation)):
        assert [ROWS[n - 1] for n in first.row_numbers[split]] == dataset.to_list()
    assert first.where("validation") == "hub:imdb (validation split)"


def test_hub_split_names_and_slices_are_passed_through(hub: FakeHub) -> None:
    raw = _load(name="imdb", split={"train": "train[2:12]", "validation": "test[:3]", "test": "test[3:8]"})

    assert [(c["path"], c["name"], c["split"]) for c in hub.calls] == [
        ("imdb", None, "train[2:12]"),
        ("imdb", None, "test[:3]"),
        ("imdb", None, "test[3:8]"),
    ]
    assert raw.train.to_list() == ROWS[2:12]
    assert [r["text"] for r in raw.validation.to_list()] == [f"test row {i}" for i in range(3)]
    assert [r["text"] for r in raw.test.to_list()] == [f"test row {i}" for i in range(3, 8)]
    assert not raw.validation_carved


def test_the_legacy_example_config_loads_its_hub_slices(hub: FakeHub) -> None:
    """configs/example_config.json: `type: huggingface`, `load_from_hub: true`, a split per role."""
    config = load_config(REPO / "configs" / "example_config.json", [])
    dataset = config.data.dataset
    assert (dataset.resolved_source(), dataset.name, dataset.subset) == ("hub", "imdb", None)

    raw = load_splits(dataset, config.seed, config.hf_token)

    assert hub.calls == [
        {"path": "imdb", "name": None, "split": "train[:1000]", "token": None},
        {"path": "imdb", "name": None, "split": "test[:200]", "token": None},
        {"path": "imdb", "name": None, "split": "test[200:400]", "token": None},
    ]
    assert raw.train.to_list() == ROWS  # fewer rows than the slice asks for: all of them
    assert [r["text"] for r in raw.validation.to_list()] == [f"test row {i}" for i in range(200)]
    assert [r["text"] for r in raw.test.to_list()] == [f"test row {i}" for i in range(200, 400)]
    assert not raw.validation_carved and raw.origin == "hub:imdb"


def test_the_hub_token_is_passed_to_load_dataset(hub: FakeHub) -> None:
    config = load_config(
        None,
        [
            "data.dataset.name=someone/private",
            "data.dataset.split.validation=test",
            "hf_token=hf_secret",
            "model.name_or_path=gpt2",
        ],
    )

    load_splits(config.data.dataset, config.seed, config.hf_token)

    assert [(c["split"], c["token"]) for c in hub.calls] == [("train", "hf_secret"), ("test", "hf_secret")]


def test_hub_row_caps_apply(hub: FakeHub) -> None:
    raw = _load(name="imdb", split={"validation": "test"}, max_train_rows=6, max_eval_rows=2)

    assert raw.train.to_list() == ROWS[:6]
    assert len(raw.validation) == 2


def test_a_hub_error_online_names_the_split(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")

    with pytest.raises(
        DataError, match=r"cannot load `imdb` split `valid` from the Hub: Unknown split"
    ) as err:
        _load(name="imdb", split={"validation": "valid"})
    assert "data.dataset.name, subset and split" in str(err.value.fix)
