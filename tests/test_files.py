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


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(root) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(d, n), root): stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode)
        for d, dirs, files in os.walk(root)
        for n in [*dirs, *files]
    } | {".": stat.S_IMODE(os.stat(root).st_mode)}


def test_usual_modes_undo_private_temporaries(tmp_path, umask_022):
    import tempfile

    from hf_add.files import give_usual_modes

    built = tempfile.mkdtemp(dir=tmp_path)
    os.makedirs(os.path.join(built, "sub"), mode=0o700)
    fd, _ = tempfile.mkstemp(dir=os.path.join(built, "sub"))
    os.close(fd)
    script = os.path.join(built, "run.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(script, 0o700)
    give_usual_modes(built)
    modes = _modes(built)
    assert modes.pop("run.sh") == 0o755
    assert {path: mode for path, mode in modes.items() if path in (".", "sub")} == {".": 0o755, "sub": 0o755}
    assert {mode for path, mode in modes.items() if path not in (".", "sub")} == {0o644}


def test_converted_beats_and_saved_models_get_usual_modes(tmp_path, umask_022):
    from pathlib import Path

    from hf_add.models.beats import convert_beats_checkpoint
    from hf_add.trainer import ADDTrainer

    from .tiny import cpu_training_args, tiny_mlp

    fixture = Path(__file__).parent / "fixtures" / "beats" / "beats_tiny_finetuned.pt"
    convert_beats_checkpoint(fixture, tmp_path / "beats")
    modes = _modes(tmp_path / "beats")
    assert modes.pop(".") == 0o755 and "model.safetensors" in modes
    assert set(modes.values()) == {0o644}, modes

    trainer = ADDTrainer(model=tiny_mlp(), args=cpu_training_args(tmp_path / "run"))
    trainer.save_model()
    modes = _modes(tmp_path / "run")
    assert modes.pop(".") == 0o755 and "model.safetensors" in modes
    assert set(modes.values()) == {0o644}, modes
