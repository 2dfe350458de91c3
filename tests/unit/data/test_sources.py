"""Data sources: local files of every format, split files and `dir`, folders saved with `save_to_disk`, the
Hub (offline here, so only its error), and the seeded validation carve-out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from llmft.config.schema import DatasetConfig
from llmft.data.sources import file_format, load_splits, read_local_rows, rows_to_dataset
from llmft.errors import DataError

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
