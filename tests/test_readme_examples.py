"""The README's Python examples marked ``<!-- tested: NAME -->`` run as printed, on tiny models.

Each example names the objects a script has by then (``args``, ``train_dataset``, ``collator``, ...); the
test provides them, replaces Hub downloads by a tiny AST, and shortens only the number of trials.
"""

from __future__ import annotations

import re

import pytest
from transformers import ASTFeatureExtractor, ASTForAudioClassification

from .audio_fixtures import write_parquet_shards
from .tiny import AST_FRAMES, AST_MELS, REPO_ROOT, ListDataset, cpu_training_args, random_rows, tiny_ast


def readme_example(name: str) -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- tested: {name} -->\n```python\n(.*?)```", text, flags=re.S)
    assert match, f"README has no example marked 'tested: {name}'"
    return match.group(1)


@pytest.fixture
def script_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ASTForAudioClassification, "from_pretrained", lambda *args, **kwargs: tiny_ast())
    rows = random_rows(16, (AST_FRAMES, AST_MELS))
    return {
        "args": cpu_training_args(tmp_path / "out", max_steps=2),
        "train_dataset": ListDataset(rows),
        "eval_dataset": ListDataset(rows[:8]),
        "collator": None,
        "model": tiny_ast(),
    }


def test_hyperparameter_search_example(script_state):
    pytest.importorskip("optuna")
    code = readme_example("hyperparameter-search").replace("n_trials=20", "n_trials=2")
    exec(compile(code, "README.md:hyperparameter-search", "exec"), script_state)
    best = script_state["best"]
    assert {"learning_rate", "lambda_mu_p", "lambda_mu_n"} <= best.hyperparameters.keys()
    assert script_state["trainer"].embedding_loss.lambda_mu_n != 1.0  # a trial's λ, not the default


def test_peft_example(script_state, tmp_path):
    pytest.importorskip("peft")
    exec(compile(readme_example("peft"), "README.md:peft", "exec"), script_state)
    saved = sorted(path.name for path in (tmp_path / "runs" / "ast-lora").iterdir())
    assert {"adapter_model.safetensors", "adapter_config.json", "hf_add_training.json"} <= set(saved)


def test_streaming_example(script_state, tmp_path):
    write_parquet_shards(tmp_path / "shards", ["dog", "rain", "siren"], 8, 2)  # 6 clips a shard: one pass
    script_state["model"] = tiny_ast(num_labels=3)
    script_state["feature_extractor"] = ASTFeatureExtractor(num_mel_bins=AST_MELS, max_length=AST_FRAMES)
    code = readme_example("streaming")
    for printed, short in (("max_steps=2000", "max_steps=2"), ("save_steps=500", "save_steps=1"),
                           ("per_device_train_batch_size=32", "per_device_train_batch_size=4")):  # fmt: skip
        code = code.replace(printed, short)
    exec(compile(code, "README.md:streaming", "exec"), script_state)
    assert script_state["trainer"].state.global_step == 2
    assert (tmp_path / "runs" / "stream" / "checkpoint-2" / "stream_position-rank0.pt").is_file()
