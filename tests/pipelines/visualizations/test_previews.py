"""Dataset and model previews read a bounded start of a file, or a bounded walk of a
folder, whatever their size."""

import json
import os
import tracemalloc

from pipelines.visualizations import previews


def test_a_csv_shows_its_header_and_first_rows(tmp_path):
    path = tmp_path / "data"
    path.write_text("id,x\n" + "".join(f"{i},{i * 2}\n" for i in range(50)))
    data = previews.dataset(path)
    assert data["format"] == "csv" and data["header"] == ["id", "x"]
    assert data["rows"][:2] == [["0", "0"], ["1", "2"]] and len(data["rows"]) == 20
    assert data["truncated"] is True and data["size"] == path.stat().st_size


def test_a_short_csv_is_whole_and_a_tsv_is_known_by_its_suffix(tmp_path):
    (tmp_path / "a.csv").write_text("a,b\n1,2\n")
    assert previews.dataset(tmp_path / "a.csv") == {
        "format": "csv", "header": ["a", "b"], "rows": [["1", "2"]], "text": "",
        "size": 8, "truncated": False}
    (tmp_path / "b.tsv").write_text("a\tb\n1\t2\n")
    assert previews.dataset(tmp_path / "b.tsv")["rows"] == [["1", "2"]]


def test_json_is_pretty_printed(tmp_path):
    path = tmp_path / "data"
    path.write_text(json.dumps({"b": [1, 2], "a": "x"}))
    data = previews.dataset(path)
    assert data["format"] == "json"
    assert data["text"] == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "x"\n}'
    assert data["truncated"] is False


def test_json_lines_are_pretty_printed_one_after_the_other(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert previews.dataset(path)["text"] == '{\n  "a": 1\n}\n{\n  "a": 2\n}'


def test_a_big_json_lines_file_shows_what_fits(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"row": i, "pad": "x" * 50}) + "\n" for i in range(5000)))
    data = previews.dataset(path)
    assert data["format"] == "json" and data["truncated"] is True
    assert '"row": 0' in data["text"] and '"row": 4999' not in data["text"]


def test_a_big_single_json_document_shows_its_start(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"values": list(range(100_000))}))
    data = previews.dataset(path)
    assert data["format"] == "json" and data["truncated"] is True
    assert data["text"].startswith('{"values": [0, 1, 2')


def test_other_text_shows_its_first_lines(tmp_path):
    path = tmp_path / "data"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    data = previews.dataset(path)
    assert data["format"] == "text" and data["text"].splitlines()[0] == "line 0"
    assert len(data["text"].splitlines()) == previews.TEXT_LINES and data["truncated"] is True
    (tmp_path / "one").write_text("0\n1\n2")  # one column: not a CSV
    assert previews.dataset(tmp_path / "one")["format"] == "text"


def test_a_utf8_character_cut_at_the_limit_keeps_the_text(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"a" * (previews.PREVIEW_BYTES - 1) + "é".encode() * 10)
    data = previews.dataset(path)
    assert data["format"] == "text" and data["truncated"] is True


def test_binary_shows_only_its_size(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 10)
    assert previews.dataset(path) == {"format": "binary", "header": [], "rows": [], "text": "",
                                      "size": 2560, "truncated": False}


def test_a_200_mb_dataset_is_never_loaded(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("w") as handle:
        handle.write("a,b\n" + "1,2\n" * 20_000)  # more than the preview reads
    os.truncate(path, 200 * 1024 * 1024)  # sparse: costs no disk
    tracemalloc.start()
    try:
        data = previews.dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert data["size"] == 200 * 1024 * 1024 and data["truncated"] is True
    assert data["format"] == "csv" and data["rows"][0] == ["1", "2"]


def test_a_folder_lists_its_files(tmp_path):
    (tmp_path / "part-0.csv").write_text("a\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part-1.csv").write_text("bb\n")
    (tmp_path / "link").symlink_to("/etc/hostname")
    data = previews.dataset(tmp_path)
    assert data["format"] == "folder" and data["header"] == ["File", "Size"]
    assert data["rows"] == [["part-0.csv", "2"], ["sub/part-1.csv", "3"]]
    assert data["size"] == 5 and data["truncated"] is False


def test_a_model_folder_lists_at_most_its_first_files(tmp_path):
    for i in range(previews.MAX_FILES + 5):
        (tmp_path / f"shard-{i:04}").write_bytes(b"x" * 10)
    data = previews.model(tmp_path, recorded_size=2050)
    assert len(data["files"]) == previews.MAX_FILES and data["truncated"] is True
    assert data["files"][0] == {"path": "shard-0000", "size": 10}
    assert data["total_size"] == 2050  # the size the engine recorded: every file


def test_a_model_file_is_one_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04" + b"x" * 98)
    assert previews.model(path, None) == {"files": [{"path": "model.pkl", "size": 100}],
                                          "total_size": 100, "truncated": False}
