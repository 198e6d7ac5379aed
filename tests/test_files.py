import json
import os
import stat

import pytest

from hf_add.files import atomic_write, write_json


def test_write_json_replaces_the_file_with_ordinary_permissions(tmp_path):
    path = tmp_path / "sub" / "results.json"
    write_json({"accuracy": 0.5}, path)
    write_json({"accuracy": 0.75}, path)
    assert json.loads(path.read_text()) == {"accuracy": 0.75}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(path.parent) == ["results.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["table.csv"]
