"""Trainer features that work with ADDTrainer as a drop-in Trainer (issue 18): one regression test each.

Each test checks the feature against something computed without ADDTrainer: the model's own outputs, a
loss written out by hand, the files the run left on disk.
"""

from __future__ import annotations

import copy
import json
import time

import huggingface_hub
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    ASTFeatureExtractor,
    EarlyStoppingCallback,
    HubertConfig,
    HubertForSequenceClassification,
    PreTrainedModel,
    TrainerCallback,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForAudioClassification,
    pipeline,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_add import ADDLoss, ADDTrainer
from hf_add.geometry import embedding_geometry

from .tiny import (
    AST_FRAMES,
    AST_MELS,
    NUM_LABELS,
    ListDataset,
    TinyConfig,
    batch_of,
    cpu_training_args,
    random_rows,
    tiny_ast,
    torchrun_on_cpu,
)

PAIRED_LABELS = [0, 0, 1, 1, 2, 2, 3, 3]  # two of each class in every 8 rows: ADD always has pairs


def rows_of(n: int, shape: tuple[int, ...], seed: int = 0, key: str = "input_values") -> list[dict]:
    """n rows {key, 'labels'} with labels 0, 0, 1, 1, 2, 2, 3, 3, 0, 0, ..."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(n, *shape, generator=generator)
    return [{key: values[i], "labels": torch.tensor(PAIRED_LABELS[i % 8])} for i in range(n)]


def ast_rows(n: int, seed: int = 0) -> list[dict]:
    return rows_of(n, (AST_FRAMES, AST_MELS), seed=seed)


def ast_pooled(model, input_values: torch.Tensor) -> torch.Tensor:
    """The AST pooler output (the classifier's input), computed by calling the backbone directly."""
    return model.audio_spectrogram_transformer(input_values).pooler_output


def hand_loss(pooled: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE + ADD written from the model's own pooled output and logits."""
    return F.cross_entropy(logits, labels) + ADDLoss()(pooled, labels)


def train_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


class InOrderADDTrainer(ADDTrainer):
    """Feeds training batches in dataset order, so a test knows which rows form each step."""

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)


# ---- PEFT LoRA ----


def test_peft_lora_add_sees_the_pooled_output_and_the_adapter_reloads_exactly(tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]
    )
    model = peft.get_peft_model(tiny_ast(), lora)
    rows = ast_rows(16)
    trainer = InOrderADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path / "out", max_steps=2),
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
    )
    head = model.base_model.model.classifier
    assert isinstance(head, peft.utils.other.ModulesToSaveWrapper)
    assert len(head._forward_pre_hooks) == 1  # the capture sits on the wrapper, not beside it

    batch = batch_of(rows[:8])
    with torch.no_grad():
        logits = model(input_values=batch["input_values"]).logits
        captured = trainer._capture.pop()
        pooled = ast_pooled(model.base_model.model, batch["input_values"])  # LoRA layers included
        torch.testing.assert_close(captured, pooled, rtol=0, atol=0)
        torch.testing.assert_close(
            trainer.compute_loss(model, dict(batch)), hand_loss(pooled, logits, batch["labels"])
        )

    trainer.train()
    adapter_dir = tmp_path / "adapter"
    trainer.save_model(str(adapter_dir))
    assert (adapter_dir / "adapter_config.json").is_file() and not (adapter_dir / "config.json").exists()

    model.eval()
    test = batch_of(ast_rows(8, seed=1))["input_values"]
    with torch.no_grad():
        trained = model(input_values=test).logits
        base_only = tiny_ast()(input_values=test).logits
        reloaded_model = peft.PeftModel.from_pretrained(tiny_ast(), str(adapter_dir)).eval()
        reloaded = reloaded_model(input_values=test).logits
    assert not torch.allclose(trained, base_only, atol=1e-4)  # the adapter changed the model
    torch.testing.assert_close(reloaded, trained, rtol=0, atol=0)


# ---- torch.compile, gradient checkpointing ----


class GradientRecorder(TrainerCallback):
    """The gradients of every parameter just before each optimizer step, and whether the model was
    gradient-checkpointing then."""

    def __init__(self):
        self.gradients: list[dict[str, torch.Tensor]] = []
        self.checkpointing: list[bool] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})
        self.checkpointing.append(bool(getattr(model, "is_gradient_checkpointing", False)))


def run_steps(tmp_path, max_steps: int = 2, **overrides) -> tuple[ADDTrainer, GradientRecorder, int]:
    """A tiny AST trained in dataset order; the recorder, and how often the MLP of the first encoder layer
    ran (a checkpointed layer runs its submodules again in the backward pass)."""
    model = tiny_ast()
    layer_calls = []
    model.audio_spectrogram_transformer.layers[0].mlp.register_forward_pre_hook(
        lambda *_: layer_calls.append(1)
    )
    recorder = GradientRecorder()
    trainer = InOrderADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path, max_steps=max_steps, **overrides),
        train_dataset=ListDataset(ast_rows(16)),
        embedding_loss=ADDLoss(),
        callbacks=[recorder],
    )
    trainer.train()
    return trainer, recorder, len(layer_calls)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tmp_path):
    plain, plain_grads, plain_calls = run_steps(tmp_path / "plain")
    checkpointed, grads, calls = run_steps(tmp_path / "checkpointed", gradient_checkpointing=True)
    assert grads.checkpointing == [True, True] and plain_grads.checkpointing == [False, False]
    assert (plain_calls, calls) == (2, 4)  # the checkpointed layer ran again in each backward pass
    for ours, theirs in zip(train_logs(checkpointed), train_logs(plain), strict=True):
        for key in ("loss", "classification_loss", "embedding_loss", "mu_p", "sigma_n"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-7), key
    for step, (ours, theirs) in enumerate(zip(grads.gradients, plain_grads.gradients, strict=True)):
        for name, gradient in ours.items():
            torch.testing.assert_close(gradient, theirs[name], rtol=1e-5, atol=1e-7, msg=f"{step} {name}")


@pytest.mark.parametrize(
    "backend",
    ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)],
    ids=["aot_eager", "inductor-slow"],
)
def test_torch_compile_gives_the_same_loss_and_gradients(tmp_path, backend):
    torch._dynamo.reset()
    plain, plain_grads, _ = run_steps(tmp_path / "plain")
    compiled, grads, _ = run_steps(tmp_path / "compiled", torch_compile=True, torch_compile_backend=backend)
    assert isinstance(compiled.model_wrapped, torch._dynamo.eval_frame.OptimizedModule)  # it did compile
    for ours, theirs in zip(train_logs(compiled), train_logs(plain), strict=True):
        for key in ("loss", "classification_loss", "embedding_loss", "mu_p", "sigma_n"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key
    for step, (ours, theirs) in enumerate(zip(grads.gradients, plain_grads.gradients, strict=True)):
        for name, gradient in ours.items():
            torch.testing.assert_close(gradient, theirs[name], rtol=1e-4, atol=1e-6, msg=f"{step} {name}")
    torch._dynamo.reset()


# ---- predict, evaluation sets, compute_metrics ----


def hand_evaluation(model, rows: list[dict]) -> dict[str, float]:
    """Loss (one batch), accuracy and geometry of ``rows`` from the model's own outputs."""
    batch = batch_of(rows)
    model.eval()
    with torch.no_grad():
        pooled = ast_pooled(model, batch["input_values"])
        logits = model.classifier(pooled)
    geometry = embedding_geometry(pooled, batch["labels"], num_classes=NUM_LABELS).summaries()
    return {
        "logits": logits,
        "loss": hand_loss(pooled, logits, batch["labels"]).item(),
        "accuracy": (logits.argmax(-1) == batch["labels"]).float().mean().item(),
        **geometry,
    }


def test_predict_returns_the_models_logits_and_our_metrics(tmp_path):
    model, rows = tiny_ast(), ast_rows(8)
    expected = hand_evaluation(copy.deepcopy(model), rows)
    trainer = ADDTrainer(model=model, args=cpu_training_args(tmp_path), embedding_loss=ADDLoss())
    output = trainer.predict(ListDataset(rows))
    torch.testing.assert_close(torch.from_numpy(output.predictions), expected["logits"])
    assert output.label_ids.tolist() == PAIRED_LABELS
    metrics = output.metrics
    assert metrics["test_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["test_intra_class_mean_distance"] == pytest.approx(
        expected["intra_class_mean_distance"], rel=1e-5
    )
    assert {"test_mu_p", "test_sigma_n", "test_classification_loss", "test_embedding_loss"} <= metrics.keys()


def test_two_evaluation_sets_are_evaluated_and_prefixed_separately(tmp_path):
    model, sets = tiny_ast(), {"a": ast_rows(8, seed=1), "b": ast_rows(8, seed=2)}
    expected = {name: hand_evaluation(copy.deepcopy(model), rows) for name, rows in sets.items()}
    trainer = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path),
        eval_dataset={name: ListDataset(rows) for name, rows in sets.items()},
        embedding_loss=ADDLoss(),
    )
    metrics = trainer.evaluate()
    for name in sets:
        assert metrics[f"eval_{name}_loss"] == pytest.approx(expected[name]["loss"], rel=1e-5)
        assert metrics[f"eval_{name}_accuracy"] == pytest.approx(expected[name]["accuracy"])
        for key in ("intra_class_mean_distance", "inter_class_cv"):
            assert metrics[f"eval_{name}_{key}"] == pytest.approx(expected[name][key], rel=1e-5), key
        assert np.isfinite(metrics[f"eval_{name}_mu_p"])
    assert metrics["eval_a_loss"] != pytest.approx(metrics["eval_b_loss"])  # two sets, not one twice
    assert not [key for key in metrics if key.startswith("eval_") and key.split("_")[1] not in sets]


def test_a_user_compute_metrics_key_wins_over_ours(tmp_path):
    """test_trainer checks that the user's metrics are merged with ours; where both name a metric, the
    user's value is the one reported."""
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=cpu_training_args(tmp_path),
        eval_dataset=ListDataset(ast_rows(8)),
        embedding_loss=ADDLoss(),
        compute_metrics=lambda prediction: {"accuracy": -1.0},
    )
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] == -1.0 and np.isfinite(metrics["eval_intra_class_mean_distance"])


# ---- TensorBoard ----


def test_tensorboard_gets_every_loss_component_and_evaluation_metric(tmp_path, monkeypatch):
    accumulator_module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    log_dir = tmp_path / "tb"
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(log_dir))
    rows = ast_rows(16)
    trainer = InOrderADDTrainer(
        model=tiny_ast(),
        args=cpu_training_args(
            tmp_path / "out", max_steps=2, report_to=["tensorboard"], eval_strategy="steps", eval_steps=2
        ),
        train_dataset=ListDataset(rows),
        eval_dataset=ListDataset(rows[:8]),
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    (event_file,) = log_dir.glob("events.out.tfevents.*")
    accumulator = accumulator_module.EventAccumulator(str(event_file))
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    components = ("loss", "classification_loss", "embedding_loss", "mu_p", "sigma_p", "mu_n", "sigma_n")
    for name in (*components, "positive_pairs"):
        assert f"train/{name}" in scalars, name
        written = [event.value for event in accumulator.Scalars(f"train/{name}")]
        logged = [entry[name] for entry in train_logs(trainer)]
        assert written == pytest.approx(logged, rel=1e-6), name
    evaluation = next(entry for entry in trainer.state.log_history if "eval_loss" in entry)
    for name in (*components, "accuracy", "intra_class_mean_distance", "inter_class_cv"):
        (event,) = accumulator.Scalars(f"eval/{name}")
        assert (event.step, event.value) == (2, pytest.approx(evaluation[f"eval_{name}"], rel=1e-6)), name


# ---- early stopping and the best checkpoint ----


def test_early_stopping_stops_and_loads_the_best_checkpoint(tmp_path):
    """A metric that only gets worse after the first evaluation: patience 2 stops at step 3, and the
    model ends with the weights of checkpoint-1 (read back from disk)."""
    scores = iter([3.0, 2.0, 1.0, 0.0, -1.0])
    args = cpu_training_args(
        tmp_path,
        max_steps=10,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        load_best_model_at_end=True,
        metric_for_best_model="score",
        greater_is_better=True,
    )
    rows = ast_rows(16)
    trainer = InOrderADDTrainer(
        model=tiny_ast(),
        args=args,
        train_dataset=ListDataset(rows),
        eval_dataset=ListDataset(rows[:8]),
        embedding_loss=ADDLoss(),
        compute_metrics=lambda prediction: {"score": next(scores)},
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2)],
    )
    trainer.train()
    assert trainer.state.global_step == 3
    assert [entry["eval_score"] for entry in trainer.state.log_history if "eval_score" in entry] == [3, 2, 1]
    assert trainer.state.best_model_checkpoint == str(tmp_path / "checkpoint-1")
    best = type(trainer.model).from_pretrained(tmp_path / "checkpoint-1").state_dict()
    last = type(trainer.model).from_pretrained(tmp_path / "checkpoint-3").state_dict()
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(best[name], last[name]) for name in best)  # training did move the weights


# ---- wav2vec2, HuBERT, Whisper classifiers and their pipelines ----

WAVE_SAMPLES = 1600  # 0.1 s at 16 kHz
WHISPER_MELS, WHISPER_FRAMES = 16, 100  # chunk_length=1 s: 100 frames of 10 ms


def tiny_wav2vec2_like(config_class, model_class, attribute: str):
    torch.manual_seed(0)
    config = config_class(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        num_labels=NUM_LABELS,
        mask_time_prob=0.0,
    )
    model = model_class(config)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)

    def pooled(input_values):
        return model.projector(getattr(model, attribute)(input_values).last_hidden_state).mean(dim=1)

    return model, extractor, pooled, "input_values", (WAVE_SAMPLES,)


def tiny_whisper():
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=WHISPER_MELS,
        d_model=16,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=32,
        max_source_positions=WHISPER_FRAMES // 2,
        classifier_proj_size=8,
        num_labels=NUM_LABELS,
    )
    model = WhisperForAudioClassification(config)
    extractor = WhisperFeatureExtractor(feature_size=WHISPER_MELS, sampling_rate=16000, chunk_length=1)

    def pooled(input_features):
        return model.projector(model.encoder(input_features).last_hidden_state).mean(dim=1)

    return model, extractor, pooled, "input_features", (WHISPER_MELS, WHISPER_FRAMES)


AUDIO_MODELS = {
    "wav2vec2": lambda: tiny_wav2vec2_like(Wav2Vec2Config, Wav2Vec2ForSequenceClassification, "wav2vec2"),
    "hubert": lambda: tiny_wav2vec2_like(HubertConfig, HubertForSequenceClassification, "hubert"),
    "whisper": tiny_whisper,
}


@pytest.mark.parametrize("name", list(AUDIO_MODELS))
def test_speech_classifiers_train_with_add_and_serve_in_the_pipeline(tmp_path, name):
    model, extractor, pooled, key, shape = AUDIO_MODELS[name]()
    model.config.id2label = {i: f"class_{i}" for i in range(NUM_LABELS)}
    model.config.label2id = {label: i for i, label in model.config.id2label.items()}
    rows = rows_of(16, shape, key=key)
    trainer = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path, max_steps=2),
        train_dataset=ListDataset(rows),
        processing_class=extractor,
        embedding_loss=ADDLoss(),
    )
    batch = batch_of(rows[:8])
    model.eval()  # no dropout: the hand computation sees the same network
    with torch.no_grad():
        embedding = pooled(batch[key])
        logits = model(**{key: batch[key]}).logits
        torch.testing.assert_close(
            trainer.compute_loss(model, dict(batch)), hand_loss(embedding, logits, batch["labels"])
        )

    trainer.train()
    logged = train_logs(trainer)
    assert len(logged) == 2 and all(
        np.isfinite(entry["mu_p"]) and entry["positive_pairs"] > 0 for entry in logged
    )
    trainer.save_model()

    waveform = np.random.default_rng(0).standard_normal(16000 if name == "whisper" else WAVE_SAMPLES)
    classifier = pipeline("audio-classification", model=str(tmp_path), device="cpu")
    scores = {item["label"]: item["score"] for item in classifier(waveform.astype(np.float32))}
    model.eval()
    with torch.no_grad():
        features = extractor(waveform.astype(np.float32), sampling_rate=16000, return_tensors="pt")
        probabilities = model(**{key: features[key]}).logits.softmax(-1)[0]
    expected = {model.config.id2label[i]: p.item() for i, p in enumerate(probabilities)}
    assert scores.keys() == expected.keys()
    for label, score in scores.items():
        assert score == pytest.approx(expected[label], rel=1e-4, abs=1e-6), label


# ---- a head with another name ----


class TinyScoreModel(PreTrainedModel):
    """A classifier whose head is ``score`` (as in many ``*ForSequenceClassification`` models)."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.body = nn.Sequential(nn.Linear(config.input_dim, config.hidden_size), nn.Tanh())
        self.score = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_values, labels=None):
        return SequenceClassifierOutput(logits=self.score(self.body(input_values)))


def test_a_head_with_another_name_via_embedding_module(tmp_path):
    torch.manual_seed(0)
    model = TinyScoreModel(TinyConfig(num_labels=NUM_LABELS))
    rows = rows_of(16, (8,))
    with pytest.raises(ValueError, match=r"no module named 'classifier'.*'score'"):
        ADDTrainer(model=model, args=cpu_training_args(tmp_path), embedding_loss=ADDLoss())
    trainer = InOrderADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path, max_steps=2),
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
        embedding_module="score",
    )
    batch = batch_of(rows[:8])
    with torch.no_grad():
        hidden = model.body(batch["input_values"])
        expected = hand_loss(hidden, model.score(hidden), batch["labels"])
        torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)
    trainer.train()
    assert all(entry["positive_pairs"] == 8 for entry in train_logs(trainer))  # 4 classes x 2 x 1 ordered
    trainer.save_model()
    saved = json.loads((tmp_path / "config.json").read_text())["hf_add_training"]
    assert saved["embedding_module"] == "score"


# ---- an IterableDataset with max_steps ----


class RowStream(torch.utils.data.IterableDataset):
    """The rows in order, once per pass: no length, no sampler."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __iter__(self):
        yield from self.rows


def test_an_iterable_dataset_with_max_steps(tmp_path):
    model, rows = tiny_ast(), ast_rows(8)
    reference = copy.deepcopy(model)
    trainer = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path, max_steps=3, per_device_train_batch_size=4),
        train_dataset=RowStream(rows),
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    logged = train_logs(trainer)
    assert trainer.state.global_step == 3 and len(logged) == 3  # 3 steps over a 2-batch stream
    batch = batch_of(rows[:4])  # the first step: the stream's first 4 rows, labels 0, 0, 1, 1
    with torch.no_grad():
        pooled = ast_pooled(reference, batch["input_values"])
        expected = hand_loss(pooled, reference.classifier(pooled), batch["labels"])
    assert logged[0]["loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert [entry["positive_pairs"] for entry in logged] == [4, 4, 4]


# ---- push_to_hub without a network ----


@pytest.fixture
def hub_offline(monkeypatch):
    """The Hub client in offline mode (huggingface_hub reads HF_HUB_OFFLINE when it is imported)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def offline_trainer(output_dir, **overrides) -> ADDTrainer:
    return ADDTrainer(
        model=tiny_ast(),
        args=cpu_training_args(output_dir, **overrides),
        processing_class=ASTFeatureExtractor(num_mel_bins=AST_MELS, max_length=AST_FRAMES),
        embedding_loss=ADDLoss(),
    )


OFFLINE_ERROR = r"offline mode is enabled.*HF_HUB_OFFLINE"


def test_push_to_hub_offline_fails_fast_with_a_clear_error(tmp_path, hub_offline):
    (tmp_path / "README.md").write_text("my notes\n")
    start = time.monotonic()
    with pytest.raises(huggingface_hub.errors.OfflineModeIsEnabled, match=OFFLINE_ERROR):
        offline_trainer(tmp_path / "other", push_to_hub=True, hub_model_id="user/test")
    trainer = offline_trainer(tmp_path)
    with pytest.raises(huggingface_hub.errors.OfflineModeIsEnabled, match=OFFLINE_ERROR):
        trainer.push_to_hub()
    assert time.monotonic() - start < 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]  # nothing saved, card kept
    assert (tmp_path / "README.md").read_text() == "my notes\n"


def test_a_failed_push_to_an_existing_repo_leaves_the_readme_unchanged(tmp_path, hub_offline):
    """The repository was created while online (hub_model_id is set), then the network went away: Trainer
    saves the model and writes the card into output_dir before the upload fails."""
    (tmp_path / "README.md").write_text("my notes\n")
    trainer = offline_trainer(tmp_path)
    trainer.hub_model_id = "user/test"
    start = time.monotonic()
    with pytest.raises(huggingface_hub.errors.OfflineModeIsEnabled, match=OFFLINE_ERROR):
        trainer.push_to_hub()
    assert time.monotonic() - start < 5
    assert (tmp_path / "README.md").read_text() == "my notes\n"


# ---- two processes under torchrun: the logged loss ----


@pytest.mark.slow  # two torchrun launches, ~45 s on 2 CPU cores
@pytest.mark.parametrize(
    "sizes",
    [
        (4, 4),
        (4, 3),
    ],
    ids=["equal", "unequal"],
)
def test_two_processes_log_the_one_process_loss_to_2e_6(tmp_path, sizes):
    """test_trainer compares the parameters after a step (and the equal-size loss to rel 1e-5); issue 18
    says the logged loss equals one process's on the concatenated batch to 2e-6."""
    output = tmp_path / "ddp.pt"
    torchrun_on_cpu("tests.workers.ddp_worker", str(output), ",".join(map(str, sizes)))
    distributed = torch.load(output)["logged_loss"]
    trainer = InOrderADDTrainer(
        model=tiny_ast(),
        args=cpu_training_args(tmp_path / "single", per_device_train_batch_size=sum(sizes), max_steps=1),
        train_dataset=ListDataset(random_rows(sum(sizes), (AST_FRAMES, AST_MELS))),
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    (single,) = [entry["loss"] for entry in train_logs(trainer)]
    assert distributed == pytest.approx(single, rel=0, abs=2e-6)
