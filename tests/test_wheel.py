"""The built wheel works outside the source tree: a model card renders and the pipeline runs."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).parent.parent

# Runs in the fresh environment, from a folder outside the repository.
USER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from transformers import ASTConfig, ASTFeatureExtractor, TrainingArguments, pipeline

    import hf_add
    from hf_add import ADDLoss, ADDTrainer
    from hf_add.models.loading import ast_from_config

    assert hf_add.__file__.startswith(sys.prefix), hf_add.__file__  # the installed wheel, not the sources
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       num_mel_bins=16, max_length=32, id2label={0: "yes", 1: "no"}, label2id={"yes": 0, "no": 1})
    trainer = ADDTrainer(
        model=ast_from_config(config),
        args=TrainingArguments("model", use_cpu=True, report_to=[]),
        processing_class=ASTFeatureExtractor(num_mel_bins=16, max_length=32),
        embedding_loss=ADDLoss(lambda_sigma_n=0.5),
    )
    trainer.save_model()
    trainer.create_model_card(dataset="spoken words")
    card = open("model/README.md").read()
    assert "ADDLoss" in card and "λ_σn = 0.5" in card and "Angular Distance Distribution" in card
    scores = pipeline("audio-classification", model="model")(np.zeros(16000, np.float32))
    assert {score["label"] for score in scores} == {"yes", "no"}
    print("wheel ok")
    """
)


def run(*command, **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_wheel_renders_a_card_and_runs_the_pipeline_outside_the_repository(tmp_path):
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
        str(REPO_ROOT))  # fmt: skip
    (wheel,) = tmp_path.glob("hf_add-*.whl")
    environment = tmp_path / "env"
    run(sys.executable, "-m", "venv", "--without-pip", str(environment))
    python = environment / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel))
    # The dependencies (torch, transformers, ...) come from this environment's site-packages, added as a
    # plain path: its .pth files (the editable install of the sources among them) are not run.
    site = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = tmp_path / "user"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    assert "wheel ok" in run(str(python), "-c", USER_SCRIPT, cwd=workdir, env=env)
