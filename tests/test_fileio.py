"""fileio.read_json: how a run folder's optional JSON files are read."""

from galaxymorph.fileio import read_json, write_json


def test_read_json_gives_the_value_or_none_for_absent_or_damaged_files(tmp_path):
    assert read_json(write_json(tmp_path / "ok.json", {"a": [1, 2]})) == {"a": [1, 2]}
    assert read_json(tmp_path / "absent.json") is None
    assert read_json(tmp_path) is None  # a folder is not a file
    (tmp_path / "cut.json").write_text('{"a": ')
    assert read_json(tmp_path / "cut.json") is None
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    assert read_json(tmp_path / "binary.json") is None
