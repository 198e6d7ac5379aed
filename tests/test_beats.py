"""BEATs port: parity with the official implementation's outputs and gradients, HF plumbing, converter errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    TrainingArguments,
    pipeline,
)

import hf_add
from hf_add.models.beats import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsModel,
    convert_beats_checkpoint,
    convert_official_key,
    downsample_padding_mask,
)

FIXTURES = Path(__file__).parent / "fixtures" / "beats"
REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def expected():
    return torch.load(FIXTURES / "beats_tiny_expected.pt", weights_only=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both fixture checkpoints converted once: {"pretrained": dir, "finetuned": dir}."""
    root = tmp_path_factory.mktemp("converted")
    return {
        name: convert_beats_checkpoint(FIXTURES / f"beats_tiny_{name}.pt", root / name) and root / name
        for name in ("pretrained", "finetuned")
    }


def frame_attention_mask(expected):
    """Frame-level HF mask (1 = real) from the fixture's sample-level official padding mask."""
    return (~downsample_padding_mask(expected["padding_mask"], expected["fbank"].shape[1])).long()


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_feature_extractor_reproduces_official_fbank(expected):
    extractor = BeatsFeatureExtractor()
    waveforms = [w[~m].numpy() for w, m in zip(expected["waveform"], expected["padding_mask"], strict=True)]
    for waveform, fbank in zip(waveforms, expected["fbank"], strict=True):
        features = extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_values"][0]
        assert max_diff(features, fbank[: features.shape[0]]) < 1e-4
    # A batch is zero-padded as waveforms first, as the official model sees it.
    batch = extractor(waveforms, sampling_rate=16000, return_tensors="pt")
    assert max_diff(batch["input_values"], expected["fbank"]) < 1e-4
    assert torch.equal(batch["attention_mask"].long(), frame_attention_mask(expected))
    fixed = extractor(
        waveforms, sampling_rate=16000, padding="max_length", max_length=20000, return_tensors="np"
    )
    assert fixed["input_values"].shape == (3, 123, 128)
    with pytest.raises(ValueError, match="8000"):
        extractor(waveforms[0], sampling_rate=8000)


def test_pretrained_reproduces_official_features(expected, converted):
    model = AutoModel.from_pretrained(converted["pretrained"]).eval()
    assert isinstance(model, BeatsModel)
    with torch.no_grad():
        masked = model(expected["fbank"], attention_mask=frame_attention_mask(expected))
        unmasked = model(expected["fbank"])
    assert max_diff(masked.last_hidden_state, expected["pretrained"]["output"]) < 1e-5
    assert torch.equal(masked.padding_mask, expected["pretrained"]["output_padding_mask"])
    assert max_diff(unmasked.last_hidden_state, expected["pretrained"]["output_no_mask"]) < 1e-5
    assert unmasked.padding_mask is None


def test_finetuned_reproduces_official_probabilities(expected, converted):
    model = AutoModelForAudioClassification.from_pretrained(converted["finetuned"]).eval()
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.id2label[3] == "/m/label3"
    with torch.no_grad():
        masked = model(expected["fbank"], attention_mask=frame_attention_mask(expected)).logits.sigmoid()
        unmasked = model(expected["fbank"]).logits.sigmoid()
    assert max_diff(masked, expected["finetuned"]["output"]) < 1e-5
    assert max_diff(unmasked, expected["finetuned"]["output_no_mask"]) < 1e-5


def test_training_gradients_match_official(expected, converted):
    """Covers layer-wise gradient decay and the weight-norm parametrisation (grads of weight_g / weight_v)."""
    model = AutoModel.from_pretrained(converted["pretrained"]).train()
    output = model(expected["fbank"]).last_hidden_state
    (output * expected["pretrained"]["train_grad_weights"]).sum().backward()
    params = dict(model.named_parameters())
    reference = expected["pretrained"]["train_grads"]
    assert {convert_official_key(k) for k in reference} == set(params)
    for key, ref in reference.items():
        grad = params[convert_official_key(key)].grad
        scale = ref.abs().max().item()
        if scale < 1e-5:
            # k_proj biases: zero in exact arithmetic (softmax ignores a per-query shift); both sides are noise.
            assert grad.abs().max().item() < 1e-5, key
        else:
            assert max_diff(grad, ref) / scale < 1e-4, key


def test_round_trip_and_remote_code(expected, converted, tmp_path):
    model = AutoModelForAudioClassification.from_pretrained(converted["finetuned"]).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_beats.BeatsConfig",
        "AutoModel": "modeling_beats.BeatsModel",
        "AutoModelForAudioClassification": "modeling_beats.BeatsForAudioClassification",
    }
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "modeling_beats.py").exists()
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is BeatsForAudioClassification
    with torch.no_grad():
        logits = model(expected["fbank"]).logits
        assert torch.equal(reloaded(expected["fbank"]).logits, logits)
    # Elsewhere (no hf_add installed): a fresh interpreter loads the code copied next to the weights.
    script = (
        "import sys, torch; from transformers import AutoFeatureExtractor, AutoModelForAudioClassification\n"
        "d, fixture, out = sys.argv[1:]\n"
        "model = AutoModelForAudioClassification.from_pretrained(d, trust_remote_code=True).eval()\n"
        "AutoFeatureExtractor.from_pretrained(d, trust_remote_code=True)\n"
        "assert type(model).__module__.startswith('transformers_modules') and 'hf_add' not in sys.modules\n"
        "torch.save(model(torch.load(fixture)['fbank']).logits.detach(), out)\n"
    )
    BeatsFeatureExtractor().save_pretrained(tmp_path)
    fixture, out = FIXTURES / "beats_tiny_expected.pt", tmp_path / "remote_logits.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(fixture), str(out)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    torch.testing.assert_close(torch.load(out), logits, rtol=0, atol=1e-6)
    extractor_config = json.loads((converted["finetuned"] / "preprocessor_config.json").read_text())
    assert extractor_config["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_beats.BeatsFeatureExtractor"
    }
    assert isinstance(AutoFeatureExtractor.from_pretrained(converted["finetuned"]), BeatsFeatureExtractor)
    assert isinstance(AutoConfig.from_pretrained(converted["pretrained"]), BeatsConfig)


def test_pretrained_checkpoint_gets_new_head(converted):
    base = AutoModel.from_pretrained(converted["pretrained"])
    model = AutoModelForAudioClassification.from_pretrained(converted["pretrained"], num_labels=3)
    assert model.classifier.out_features == 3
    for name, tensor in base.state_dict().items():
        assert torch.equal(model.beats.state_dict()[name], tensor), name


def test_pipeline_scores_numpy_waveform(converted, expected):
    classifier = pipeline("audio-classification", model=str(converted["finetuned"]), device="cpu")
    scores = classifier(expected["waveform"][1, :12000].numpy(), top_k=3)
    assert len(scores) == 3 and all(s["label"].startswith("/m/label") and 0 < s["score"] < 1 for s in scores)


def tiny_model(**overrides):
    torch.manual_seed(0)
    config = dict(
        embed_dim=24,
        encoder_layers=2,
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        conv_pos=16,
        conv_pos_groups=4,
        encoder_layerdrop=0.0,
        classifier_dropout=0.0,
        num_labels=5,
    )
    return BeatsForAudioClassification(BeatsConfig(**{**config, **overrides}))


def grads_and_logits(model, inputs, mask):
    model.zero_grad()
    logits = model(inputs, attention_mask=mask).logits
    logits.pow(2).sum().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("layer_norm_first", [False, True])
def test_sdpa_matches_eager(layer_norm_first):
    model = tiny_model(layer_norm_first=layer_norm_first, deep_norm=not layer_norm_first).train()
    inputs = torch.randn(2, 64, 128)
    mask = torch.ones(2, 64, dtype=torch.long)
    mask[1, 40:] = 0
    assert model.config._attn_implementation == "sdpa"
    sdpa_logits, sdpa_grads = grads_and_logits(model, inputs, mask)
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    eager_logits, eager_grads = grads_and_logits(model, inputs, mask)
    torch.testing.assert_close(sdpa_logits, eager_logits, rtol=1e-5, atol=1e-5)
    for name, grad in sdpa_grads.items():
        torch.testing.assert_close(grad, eager_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_gradient_checkpointing_keeps_gradients():
    model = tiny_model().train()
    inputs = torch.randn(2, 48, 128)
    mask = torch.ones(2, 48, dtype=torch.long)
    mask[0, 30:] = 0
    logits, grads = grads_and_logits(model, inputs, mask)
    model.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.beats.encoder.layers)
    ckpt_logits, ckpt_grads = grads_and_logits(model, inputs, mask)
    assert torch.equal(logits, ckpt_logits)
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-6, atol=1e-7, msg=name)


def test_layerdrop_and_gradient_decay():
    model = tiny_model(encoder_layerdrop=1.0, layer_wise_gradient_decay_ratio=0.5)
    inputs = torch.randn(1, 32, 128)
    model.train()
    model(inputs).logits.sum().backward()
    assert all(p.grad is None for p in model.beats.encoder.layers.parameters())  # every layer dropped
    model.eval()
    model.zero_grad()
    model(inputs).logits.sum().backward()
    assert all(p.grad is not None for p in model.beats.encoder.layers.parameters())


def test_labels_give_hf_losses():
    model = tiny_model().eval()
    inputs = torch.randn(3, 32, 128)
    labels = torch.tensor([0, 4, 2])
    out = model(inputs, labels=labels, output_hidden_states=True)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert len(out.hidden_states) == model.config.encoder_layers + 1
    model.config.problem_type = "multi_label_classification"
    targets = torch.nn.functional.one_hot(labels, 5).float()
    out = model(inputs, labels=targets)
    torch.testing.assert_close(
        out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets)
    )


def corrupt(tmp_path, edit):
    checkpoint = torch.load(FIXTURES / "beats_tiny_finetuned.pt", weights_only=False)
    edit(checkpoint)
    path = tmp_path / "bad.pt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["model"].update({"encoder.extra.weight": torch.zeros(1)}), "encoder.extra.weight"),
        (lambda c: c["model"].pop("encoder.layers.1.fc2.bias"), "encoder.layers.1.fc2.bias"),
        (lambda c: c["model"].pop("encoder.pos_conv.0.weight_g"), "parametrizations.weight.original0"),
        (lambda c: c["cfg"].update({"quant_noise_pq": 0.1}), "quant_noise_pq"),
        (lambda c: c["cfg"].update({"activation_fn": "glu"}), "activation_fn"),
    ],
)
def test_bad_checkpoint_raises_and_writes_nothing(tmp_path, edit, named):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        convert_beats_checkpoint(corrupt(tmp_path, edit), output_dir)
    assert not output_dir.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pt"]


class WritesAFile:
    """Unpickling this runs code: it writes the file at ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('ran')",)


def test_checkpoint_that_runs_code_is_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    from hf_add.cli import console_main

    for name in ("pretrained", "finetuned", "expected"):  # the official format loads without pickle
        torch.load(FIXTURES / f"beats_tiny_{name}.pt", weights_only=True)
    marker, checkpoint, output_dir = tmp_path / "ran.txt", tmp_path / "crafted.pt", tmp_path / "out"
    official = torch.load(FIXTURES / "beats_tiny_finetuned.pt", weights_only=True)
    torch.save({**official, "label_dict": WritesAFile(marker)}, checkpoint)
    monkeypatch.setattr(sys, "argv", ["hf-add", "convert-beats", str(checkpoint), str(output_dir)])
    assert console_main() == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line.startswith(f"hf-add convert-beats: error: {checkpoint} holds more than")
        and "--allow_pickle" in line
    )
    assert "calls builtins.exec" in line or "calls exec" in line
    assert not marker.exists() and not output_dir.exists()
    with pytest.raises(ValueError, match="allow_pickle=True"):
        convert_beats_checkpoint(checkpoint, output_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crafted.pt"]
    convert_beats_checkpoint(
        checkpoint, output_dir, allow_pickle=True
    )  # the file's code runs: label_dict None
    assert marker.read_text() == "ran" and (output_dir / "model.safetensors").exists()


def test_add_trainer_trains_beats(tmp_path):
    model = tiny_model(num_labels=2)
    torch.manual_seed(1)
    train = [{"input_values": torch.randn(32, 128), "labels": i % 2} for i in range(12)]
    trainer = hf_add.ADDTrainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4, report_to=[], use_cpu=True
        ),
        train_dataset=train,
        embedding_loss=hf_add.ADDLoss(),
    )
    result = trainer.train()
    assert np.isfinite(result.training_loss)


def test_random_init_of_weight_normed_conv():
    conv = tiny_model(encoder_embed_dim=64, conv_pos=32).beats.encoder.pos_conv_embed.conv
    torch.testing.assert_close(conv.weight, conv.parametrizations.weight.original1)
    assert conv.bias.abs().max() == 0
    assert abs(conv.weight.std().item() / (4 / (32 * 64)) ** 0.5 - 1) < 0.1


def cpu_runs(dtype: torch.dtype) -> bool:
    try:
        with torch.autocast("cpu", dtype=dtype):
            return torch.isfinite(torch.ones(2, 2) @ torch.ones(2, 2)).all().item()
    except (RuntimeError, ValueError):
        return False


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize(
    "dtype",
    [
        torch.bfloat16,
        pytest.param(
            torch.float16,
            marks=pytest.mark.skipif(not cpu_runs(torch.float16), reason="no float16 autocast on this CPU"),
        ),
    ],
)
def test_mixed_precision_forward_and_backward_are_finite(expected, converted, implementation, dtype):
    """Autocast on the fixtures, with q/k weights scaled so that the logits q·k pass float16's 65504:
    the overflow that turns the eager softmax into NaN unless it runs in float32."""
    model = AutoModelForAudioClassification.from_pretrained(converted["finetuned"]).train()
    model.set_attn_implementation(implementation)
    mask = frame_attention_mask(expected)
    with torch.no_grad():
        reference = model(expected["fbank"], attention_mask=mask).logits
        with torch.autocast("cpu", dtype=dtype):
            close = model(expected["fbank"], attention_mask=mask).logits.float()
    torch.testing.assert_close(close, reference, rtol=0.05, atol=0.05)

    attention = model.beats.encoder.layers[0].attention
    projections = {}
    hooks = [
        getattr(attention, name).register_forward_hook(
            lambda module, args, out, name=name: projections.update({name: out.detach().float()})
        )
        for name in ("q_proj", "k_proj")
    ]
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                parameter.mul_(300.0)
        model(expected["fbank"], attention_mask=mask)
    for hook in hooks:
        hook.remove()
    heads = [p.view(*p.shape[:2], attention.num_heads, -1).transpose(1, 2) for p in projections.values()]
    assert (heads[0] @ heads[1].transpose(-1, -2) * attention.scaling).abs().max() > 65504

    model.zero_grad()
    with torch.autocast("cpu", dtype=dtype):
        logits = model(expected["fbank"], attention_mask=mask).logits
    assert logits.dtype == dtype and torch.isfinite(logits).all()
    logits.float().pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
