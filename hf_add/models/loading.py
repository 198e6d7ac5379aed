"""Models and their feature extractors: named AST configs to train from scratch, AST input-length adaptation,
and loading a checkpoint with a new head and the extractor set up for a dataset's clips (AST frames, BEATs
padding)."""

from __future__ import annotations

import os

import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    AutoConfig,
    AutoFeatureExtractor,
)

from hf_add.data.audio import SAMPLING_RATE
from hf_add.data.presets import DatasetSpec
from hf_add.models.beats import BeatsConfig, BeatsFeatureExtractor, BeatsForAudioClassification

AST_MODEL_TYPE = "audio-spectrogram-transformer"

# Configurations for training AST from scratch (no checkpoint): 128 mel bins, 16x16 patches, stride 10.
NAMED_CONFIGS = {
    "ast-tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "ast-mini": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128),
    "ast-small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "ast-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def check_model_location(model_name_or_path: str) -> None:
    """Fail early, naming the fix, for a model that is neither a named config, a saved directory nor a Hub id.

    ``from_pretrained`` says "Repo id must be in the form 'repo_name'..." for a mistyped local path.
    """
    if model_name_or_path in NAMED_CONFIGS:
        return
    if os.path.isdir(model_name_or_path):
        if not os.path.isfile(os.path.join(model_name_or_path, "config.json")):
            raise ValueError(
                f"{model_name_or_path} has no config.json, so it is not a saved model; give the directory that "
                "save_pretrained (or hf-add train: output_dir/<fold>) wrote"
            )
        return
    looks_local = model_name_or_path.startswith(("/", ".", "~")) or model_name_or_path.count("/") > 1
    if looks_local:
        raise ValueError(
            f"no model directory {model_name_or_path!r}. Give an existing directory saved with save_pretrained, "
            f"a Hub id such as MIT/ast-finetuned-audioset-10-10-0.4593, or one of {sorted(NAMED_CONFIGS)}."
        )


def check_saved_weights(model_dir: str) -> None:
    """Refuse, before any data is loaded, a saved model whose ``model.safetensors`` cannot be read (truncated
    by an interrupted copy or a full disk, or not a safetensors file), naming the file."""
    from safetensors import SafetensorError, safe_open

    path = os.path.join(model_dir, "model.safetensors")
    if not os.path.isfile(path):
        return
    try:
        with safe_open(path, "pt"):
            pass
    except SafetensorError as error:
        raise ValueError(
            f"{path} cannot be read ({' '.join(str(error).split())}): the file is truncated or corrupt; copy or "
            "save the model again"
        ) from None


def model_type_of(model_name_or_path: str) -> str:
    """``ast`` or ``beats``, from a named config or the checkpoint's config.json."""
    if model_name_or_path in NAMED_CONFIGS:
        return "ast"
    model_type = AutoConfig.from_pretrained(model_name_or_path).model_type
    kinds = {AST_MODEL_TYPE: "ast", BeatsConfig.model_type: "beats"}
    if model_type not in kinds:
        raise ValueError(
            f"{model_name_or_path} is a {model_type!r} model; this recipe supports AST and BEATs"
        )
    return kinds[model_type]


def _ast_time_patches(config: ASTConfig, max_length: int) -> int:
    return (max_length - config.patch_size) // config.time_stride + 1


def adapt_ast_max_length(model: ASTForAudioClassification, new_max_length: int) -> ASTForAudioClassification:
    """Give an AST another input length, adapting its time position embeddings as the AST recipe does.

    The patch position embeddings are reshaped to the (frequency, time) patch grid; for fewer time patches
    the centre of the grid is kept, for more it is bilinearly interpolated (Gong et al. 2021, ``ast_models``).
    The cls / distillation embeddings are unchanged. Modifies ``model`` in place and returns it.
    """
    config = model.config
    embeddings = model.audio_spectrogram_transformer.embeddings
    freq_patches, old_time = embeddings.get_shape(config)
    new_time = _ast_time_patches(config, new_max_length)
    if new_time == old_time:
        config.max_length = new_max_length
        return model
    old = embeddings.position_embeddings.data
    tokens, hidden = old[:, :2], old.shape[-1]
    grid = old[:, 2:].reshape(1, freq_patches, old_time, hidden).permute(0, 3, 1, 2)
    if new_time < old_time:
        start = old_time // 2 - new_time // 2
        grid = grid[..., start : start + new_time]
    else:
        grid = torch.nn.functional.interpolate(grid, size=(freq_patches, new_time), mode="bilinear")
    patches = grid.permute(0, 2, 3, 1).reshape(1, freq_patches * new_time, hidden)
    embeddings.position_embeddings = torch.nn.Parameter(torch.cat([tokens, patches], dim=1).contiguous())
    config.max_length = new_max_length
    return model


def ast_from_config(config: ASTConfig) -> ASTForAudioClassification:
    """A new AST for training from scratch, with its class tokens and position embeddings initialised.

    transformers initialises them to exactly 0 (right for fine-tuning, where a checkpoint overwrites
    them); from scratch, LayerNorm of an all-zero token (eps 1e-12) has a slope of 1e12 and training
    collapses. The original AST (after DeiT) draws them from a truncated normal with std 0.02.
    """
    model = ASTForAudioClassification(config)
    embeddings = model.audio_spectrogram_transformer.embeddings
    with torch.no_grad():
        for parameter in (
            embeddings.cls_token,
            embeddings.distillation_token,
            embeddings.position_embeddings,
        ):
            torch.nn.init.trunc_normal_(parameter, std=config.initializer_range)
    return model


def extractor_kwargs(extractor) -> dict:
    """How the collator calls a feature extractor, in training and in evaluation alike: AST has a fixed number
    of frames and BEATs pads to the longest clip and cuts at its saved ``max_length`` by themselves; any other
    extractor is asked to pad to the longest clip."""
    return (
        {} if isinstance(extractor, (ASTFeatureExtractor, BeatsFeatureExtractor)) else {"padding": "longest"}
    )


def load_feature_extractor(model_name_or_path: str, spec: DatasetSpec, ast_max_length: int | None = None):
    """The feature extractor set up for ``spec``'s clips, and the keyword arguments to call it with.

    AST gets fixed-length inputs of ``ast_max_length`` (default: the preset's) frames; BEATs gets clips padded
    to the longest in the batch (at most ``spec.max_seconds``) with an attention mask (``extractor_kwargs``).
    """
    max_length = ast_max_length or spec.ast_max_length
    if model_name_or_path in NAMED_CONFIGS:
        extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=max_length, sampling_rate=SAMPLING_RATE)
        return extractor, extractor_kwargs(extractor)
    if model_type_of(model_name_or_path) == "ast":
        extractor = ASTFeatureExtractor.from_pretrained(model_name_or_path, max_length=max_length)
        return extractor, extractor_kwargs(extractor)
    try:
        extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    except OSError:  # a converted checkpoint directory without preprocessor_config.json
        extractor = BeatsFeatureExtractor()
    # Saved with the extractor, so `hf-add evaluate` and `pipeline` cut long clips as training does.
    extractor.max_length = int(spec.max_seconds * SAMPLING_RATE)
    return extractor, extractor_kwargs(extractor)


def load_model_and_extractor(
    model_name_or_path: str,
    spec: DatasetSpec,
    id2label: dict[int, str],
    ast_max_length: int | None = None,
    multi_label: bool = False,
):
    """The classifier (new head for ``id2label``) and its feature extractor set up for ``spec``'s clips.

    ``config.problem_type`` is set either way (an AudioSet checkpoint may carry "multi_label_classification"),
    so that ADDTrainer and ``pipeline`` (sigmoid or softmax scores) treat the new head as the data is.

    An AST checkpoint used at another input length gets its position embeddings cut or interpolated (see
    ``load_feature_extractor`` for the inputs). Returns (model, feature_extractor, extractor_kwargs).
    """
    # No num_labels: the config derives it from id2label, and passing both to from_pretrained makes
    # transformers build the checkpoint's config (e.g. 527 AudioSet labels) with num_labels=n first and warn
    # "num_labels=n is incompatible to the id2label map of length 527" before id2label replaces the map.
    labels = {
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
    }
    max_length = ast_max_length or spec.ast_max_length
    extractor, extractor_kwargs = load_feature_extractor(model_name_or_path, spec, ast_max_length)
    if model_name_or_path in NAMED_CONFIGS:
        config = ASTConfig(
            num_mel_bins=128, max_length=max_length, **NAMED_CONFIGS[model_name_or_path], **labels
        )
        return ast_from_config(config), extractor, extractor_kwargs
    if model_type_of(model_name_or_path) == "ast":
        # Load at the checkpoint's own length (so no embedding is re-initialised), then adapt it.
        model = ASTForAudioClassification.from_pretrained(
            model_name_or_path, ignore_mismatched_sizes=True, **labels
        )
        return adapt_ast_max_length(model, max_length), extractor, extractor_kwargs
    model = BeatsForAudioClassification.from_pretrained(
        model_name_or_path, ignore_mismatched_sizes=True, **labels
    )
    return model, extractor, extractor_kwargs
