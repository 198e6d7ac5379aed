"""Convert an official BEATs checkpoint (`{'cfg', 'model'[, 'label_dict']}`) into a `save_pretrained` directory."""

import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path

import torch
from huggingface_hub import create_repo, upload_folder

from hf_add.files import give_usual_modes

from .configuration_beats import BeatsConfig
from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import BeatsForAudioClassification, BeatsModel

# Defaults of the official `BEATsConfig`: a cfg that omits a field means these values, not BeatsConfig's.
OFFICIAL_DEFAULTS = {
    "input_patch_size": -1,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 1.0,
    "layer_norm_first": False,
    "deep_norm": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "finetuned_model": False,
    "predictor_dropout": 0.1,
    "predictor_class": 527,
}

# Official parameter name -> name in BeatsModel (`classifier.*` for the fine-tuned predictor).
KEY_PATTERNS = [
    (r"post_extract_proj\.(weight|bias)", r"embeddings.projection.\1"),
    (r"patch_embedding\.(weight|bias)", r"embeddings.patch_embedding.\1"),
    (r"layer_norm\.(weight|bias)", r"embeddings.layer_norm.\1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (
        r"encoder\.layers\.\d+\.self_attn\.relative_attention_bias\.weight",
        r"encoder.relative_attention_bias.weight",
    ),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)",
        r"encoder.layers.\1.attention.gru_rel_pos_linear.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
        r"encoder.layers.\1.attention.\2_proj.\3",
    ),
    (
        r"encoder\.layers\.(\d+)\.(self_attn_layer_norm|fc1|fc2|final_layer_norm)\.(weight|bias)",
        r"encoder.layers.\1.\2.\3",
    ),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"predictor\.(weight|bias)", r"classifier.\1"),
]


def convert_official_key(key: str) -> str:
    """Name in [`BeatsModel`] of an official parameter (prefix `beats.` for [`BeatsForAudioClassification`])."""
    for pattern, replacement in KEY_PATTERNS:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    raise ValueError(f"Unknown key in BEATs checkpoint: {key!r}")


def config_from_official(cfg: dict, label_dict: dict | None = None) -> BeatsConfig:
    """Build a [`BeatsConfig`] from an official `cfg`; fields without an implementation raise ValueError."""
    unknown = sorted(set(cfg) - set(OFFICIAL_DEFAULTS))
    if unknown:
        raise ValueError(f"Unsupported field(s) in BEATs checkpoint cfg: {unknown}")
    values = {**OFFICIAL_DEFAULTS, **cfg}
    if values["input_patch_size"] <= 0:
        raise ValueError(f"Unsupported input_patch_size={values['input_patch_size']} in BEATs checkpoint cfg")
    finetuned = values.pop("finetuned_model")
    num_classes = values.pop("predictor_class")
    classifier_dropout = values.pop("predictor_dropout")
    if not finetuned:
        return BeatsConfig(**values, architectures=["BeatsModel"])
    id2label = {int(i): str(label) for i, label in (label_dict or {}).items()} or None
    if id2label is not None and sorted(id2label) != list(range(num_classes)):
        raise ValueError(f"label_dict does not cover the predictor_class={num_classes} classes")
    return BeatsConfig(
        **values,
        classifier_dropout=classifier_dropout,
        num_labels=num_classes,
        id2label=id2label,
        label2id=None if id2label is None else {label: i for i, label in id2label.items()},
        problem_type="multi_label_classification",  # the official model scores with a sigmoid
        architectures=["BeatsForAudioClassification"],
    )


def model_from_official(checkpoint: dict) -> BeatsModel | BeatsForAudioClassification:
    """Build the model of an official checkpoint and load every weight, refusing any unknown or missing key."""
    config = config_from_official(checkpoint["cfg"], checkpoint.get("label_dict"))
    finetuned = config.architectures == ["BeatsForAudioClassification"]
    model = BeatsForAudioClassification(config) if finetuned else BeatsModel(config)
    expected = model.state_dict()
    prefix = "beats." if finetuned else ""
    state_dict = {}
    for key, tensor in checkpoint["model"].items():
        name = convert_official_key(key)
        name = name if name.startswith("classifier.") else prefix + name
        if name not in expected:
            raise ValueError(f"Unexpected key in BEATs checkpoint for this cfg: {key!r}")
        if tensor.shape != expected[name].shape:
            raise ValueError(
                f"Shape mismatch for {key!r}: {tuple(tensor.shape)} vs {tuple(expected[name].shape)}"
            )
        if name in state_dict and not torch.equal(state_dict[name], tensor):
            raise ValueError(f"{key!r} differs from the shared relative position bias of layer 0")
        state_dict[name] = tensor
    missing = sorted(set(expected) - set(state_dict))
    if missing:
        raise ValueError(f"BEATs checkpoint is missing weights for: {missing}")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def load_official_checkpoint(checkpoint_path: str | os.PathLike, allow_pickle: bool = False) -> dict:
    """The content of an official `.pt`, read with `weights_only=True`: dicts, lists, strings, numbers and
    tensors, which is all the official format holds. Anything else is refused unless `allow_pickle`, which
    unpickles the file in full and so runs any code it carries: only for a file from a source you trust."""
    if allow_pickle:
        return torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    try:
        return torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        raise ValueError(
            f"{checkpoint_path} holds more than the official BEATs format's dicts, strings, numbers and tensors"
            + (f" (it calls {found.group(1)})" if found else "")
            + ": reading it would run code from the file. If you trust its source, pass --allow_pickle "
            "(allow_pickle=True)."
        ) from None


def convert_beats_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    push_to_hub: str | None = None,
    allow_pickle: bool = False,
):
    """Write config, safetensors weights and feature extractor config of an official `.pt` to `output_dir`.

    The directory appears only once complete (written to a sibling temp dir, then renamed). `push_to_hub` is a
    repository id to upload the result to. The checkpoint is read without running code from it (see
    `load_official_checkpoint`; `allow_pickle=True` lifts that, for a trusted file). Returns the converted model.
    """
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists")
    checkpoint = load_official_checkpoint(checkpoint_path, allow_pickle)
    model = model_from_official(checkpoint)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        model.save_pretrained(tmp_dir)
        BeatsFeatureExtractor().save_pretrained(tmp_dir)
        give_usual_modes(tmp_dir)  # mkdtemp made it 0700, safetensors its weights 0600
        tmp_dir.rename(output_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if push_to_hub:
        create_repo(push_to_hub, exist_ok=True)
        upload_folder(repo_id=push_to_hub, folder_path=output_dir)
    return model


__all__ = [
    "convert_beats_checkpoint",
    "convert_official_key",
    "config_from_official",
    "load_official_checkpoint",
    "model_from_official",
]
