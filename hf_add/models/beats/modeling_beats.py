"""PyTorch BEATs model: fbank patches -> transformer encoder with gated relative position bias."""

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_beats import BeatsConfig

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_accurate": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
    "tanh": torch.tanh,
    "linear": lambda hidden_states: hidden_states,
}


def downsample_padding_mask(padding_mask: torch.Tensor, target_length: int) -> torch.Tensor:
    """Reduce a (batch, length) padding mask (True = pad) to `target_length` steps, exactly as the official code.

    The remainder `length % target_length` is dropped from the end, the rest is cut into `target_length` equal
    chunks, and a step is padding only if its whole chunk is. The official model applies this from samples to
    fbank frames and again from frames to patches (even though patches run over frequency too); matching it is
    what reproduces its padded outputs.
    """
    extra = padding_mask.size(1) % target_length
    if extra > 0:
        padding_mask = padding_mask[:, :-extra]
    return padding_mask.reshape(padding_mask.size(0), target_length, -1).all(-1)


class BeatsGradMultiply(torch.autograd.Function):
    """Identity forward, gradient multiplied by `scale`: the official layer-wise gradient decay."""

    @staticmethod
    def forward(ctx, hidden_states, scale):
        ctx.scale = scale
        return hidden_states.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.scale, None


@dataclass
class BeatsModelOutput(ModelOutput):
    """
    Output of [`BeatsModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`):
            Encoder output, one vector per fbank patch (time-major over the patch grid).
        padding_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
            True where a patch counts as padding (official down-sampling rule); `None` without `attention_mask`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Input of each encoder layer followed by the final output, when `output_hidden_states=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    padding_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class BeatsPatchEmbeddings(nn.Module):
    """Cuts the fbank into square patches, embeds them and projects them to the encoder width."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        size = config.input_patch_size
        self.patch_embedding = nn.Conv2d(
            1, config.embed_dim, kernel_size=size, stride=size, bias=config.conv_bias
        )
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        self.projection = (
            nn.Linear(config.embed_dim, config.encoder_embed_dim)
            if config.embed_dim != config.encoder_embed_dim
            else None
        )
        self.dropout = nn.Dropout(config.dropout_input)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(fbank.unsqueeze(1))
        patches = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.projection is not None:
            patches = self.projection(patches)
        return self.dropout(patches)


class BeatsPositionalConvEmbedding(nn.Module):
    """Grouped, weight-normalised convolution over the patch sequence, added to it as positional information."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        conv = nn.Conv1d(
            config.encoder_embed_dim,
            config.encoder_embed_dim,
            kernel_size=config.conv_pos,
            padding=config.conv_pos // 2,
            groups=config.conv_pos_groups,
        )
        # Parametrised (not folded) so that fine-tuning updates the magnitude and direction as the official does.
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        # An even kernel with symmetric padding yields one extra step: drop it to keep the length.
        self.num_pad_remove = 1 if config.conv_pos % 2 == 0 else 0

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv(hidden_states.transpose(1, 2))
        if self.num_pad_remove:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return F.gelu(hidden_states).transpose(1, 2)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention with an additive float mask; returns (batch, seq, heads, head_dim) and the weights.

    Logits, bias and softmax are float32 whatever the autocast state: in float16, q·k of a trained BEATs can
    pass 65504 and turn into inf, and the softmax of a row holding inf is NaN (the official code avoids it
    by scaling q down by 32 and subtracting the row maximum; computing in float32 gives the same softmax).
    Only the probabilities go back to the value's dtype, for the second product.
    """
    with torch.autocast(device_type=query.device.type, enabled=False):
        scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scaling
        if attention_mask is not None:
            scores = scores + attention_mask.float()
        weights = scores.softmax(dim=-1)
    weights = F.dropout(weights.to(value.dtype), p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class BeatsAttention(nn.Module):
    """Multi-head self-attention with an additive, optionally query-gated, relative position bias."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.encoder_attention_heads
        self.head_dim = config.encoder_embed_dim // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.is_causal = False
        self.q_proj = nn.Linear(config.encoder_embed_dim, config.encoder_embed_dim)
        self.k_proj = nn.Linear(config.encoder_embed_dim, config.encoder_embed_dim)
        self.v_proj = nn.Linear(config.encoder_embed_dim, config.encoder_embed_dim)
        self.out_proj = nn.Linear(config.encoder_embed_dim, config.encoder_embed_dim)
        self.gru_rel_pos = config.gru_rel_pos
        if self.gru_rel_pos:
            self.gru_rel_pos_linear = nn.Linear(self.head_dim, 8)
            self.gru_rel_pos_const = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch_size, seq_len, _ = hidden_states.shape
        shape = (batch_size, seq_len, self.num_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)

        bias = attention_mask
        if position_bias is not None:
            if self.gru_rel_pos:
                # Per query and head, two sigmoid gates decide how much of the position bias to use.
                gates = self.gru_rel_pos_linear(query).view(batch_size, self.num_heads, seq_len, 2, 4).sum(-1)
                gate_a, gate_b = torch.sigmoid(gates).chunk(2, dim=-1)
                position_bias = (gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0) * position_bias
            bias = position_bias if bias is None else position_bias + bias
        if bias is not None and self.config._attn_implementation != "eager":
            # SDPA wants the mask in the query's dtype; clamped so that float16 gets its most negative finite
            # value, not -inf. Its kernels (and its math fallback) accumulate q·k and the softmax in float32.
            bias = bias.clamp(min=torch.finfo(query.dtype).min).to(query.dtype)

        # The official subtracts the row max and rescales by alpha = 32 before the softmax: the same softmax, so
        # the bias can go to SDPA as its additive mask.
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, _ = attention_interface(
            self,
            query,
            key,
            value,
            bias,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        attn_output = attn_output.reshape(batch_size, seq_len, -1)
        return self.out_proj(attn_output)


class BeatsEncoderLayer(GradientCheckpointingLayer):
    """Transformer layer, post-norm with DeepNorm residual scaling (or pre-norm when `layer_norm_first`)."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.attention = BeatsAttention(config)
        self.dropout = nn.Dropout(config.dropout)
        self.self_attn_layer_norm = nn.LayerNorm(config.encoder_embed_dim)
        self.fc1 = nn.Linear(config.encoder_embed_dim, config.encoder_ffn_embed_dim)
        self.activation = ACTIVATIONS[config.activation_fn]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.encoder_ffn_embed_dim, config.encoder_embed_dim)
        self.final_layer_norm = nn.LayerNorm(config.encoder_embed_dim)
        self.layer_norm_first = config.layer_norm_first
        self.residual_scale = (2 * config.encoder_layers) ** 0.25 if config.deep_norm else 1.0

    def feed_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation_dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        residual = hidden_states
        if self.layer_norm_first:
            hidden_states = self.attention(
                self.self_attn_layer_norm(hidden_states), position_bias, attention_mask
            )
            hidden_states = residual + self.dropout(hidden_states)
            return hidden_states + self.feed_forward(self.final_layer_norm(hidden_states))
        hidden_states = self.attention(hidden_states, position_bias, attention_mask)
        hidden_states = self.self_attn_layer_norm(
            residual * self.residual_scale + self.dropout(hidden_states)
        )
        residual = hidden_states
        return self.final_layer_norm(residual * self.residual_scale + self.feed_forward(hidden_states))


class BeatsEncoder(nn.Module):
    """Convolutional positional embedding, then the layers, with layer-wise gradient decay and layerdrop."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.pos_conv_embed = BeatsPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.encoder_embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        # One bias table for all layers: the official layers share the first layer's embedding.
        self.relative_attention_bias = (
            nn.Embedding(config.num_buckets, config.encoder_attention_heads)
            if config.relative_position_embedding
            else None
        )
        self.layers = nn.ModuleList(BeatsEncoderLayer(config) for _ in range(config.encoder_layers))

    def relative_position_bucket(self, relative_positions: torch.Tensor) -> torch.Tensor:
        """Bidirectional buckets: exact below `num_buckets // 4`, logarithmic up to `max_distance`."""
        num_buckets = self.config.num_buckets // 2
        buckets = (relative_positions > 0).long() * num_buckets
        distance = relative_positions.abs()
        max_exact = num_buckets // 2
        # Clamped only to keep log() finite; distances below max_exact take the exact branch anyway.
        log_distance = torch.log(distance.clamp(min=max_exact).float() / max_exact)
        large = (
            max_exact
            + (
                log_distance / math.log(self.config.max_distance / max_exact) * (num_buckets - max_exact)
            ).long()
        )
        large = large.clamp(max=num_buckets - 1)
        return buckets + torch.where(distance < max_exact, distance, large)

    def position_bias(self, seq_len: int) -> torch.Tensor:
        """(num_heads, seq_len, seq_len) additive bias from the key-minus-query distance."""
        positions = torch.arange(seq_len, device=self.relative_attention_bias.weight.device)
        buckets = self.relative_position_bucket(positions[None, :] - positions[:, None])
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        attention_mask = None
        if padding_mask is not None:
            hidden_states = hidden_states.masked_fill(padding_mask.unsqueeze(-1), 0.0)
            # Key padding folded into the additive mask, kept float32 (the attention casts it for SDPA); the most
            # negative finite value keeps SDPA NaN-free.
            attention_mask = torch.zeros(padding_mask.shape, dtype=torch.float32, device=hidden_states.device)
            attention_mask = attention_mask.masked_fill(padding_mask, torch.finfo(torch.float32).min)
            attention_mask = attention_mask[:, None, None, :]

        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        position_bias = None
        if self.relative_attention_bias is not None:
            position_bias = self.position_bias(hidden_states.size(1))

        all_hidden_states = () if output_hidden_states else None
        ratio = self.config.layer_wise_gradient_decay_ratio
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if ratio != 1.0:
                hidden_states = BeatsGradMultiply.apply(hidden_states, ratio)
            if self.training and torch.rand([]).item() < self.config.encoder_layerdrop:
                continue
            # Positional arguments: re-entrant checkpointing only propagates gradients through those.
            hidden_states = layer(hidden_states, position_bias, attention_mask)

        if self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return hidden_states, all_hidden_states


class BeatsPreTrainedModel(PreTrainedModel):
    """Weight init, SDPA/eager dispatch and gradient checkpointing shared by the BEATs models."""

    config_class = BeatsConfig
    config: BeatsConfig
    base_model_prefix = "beats"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module):
        """Official schemes where they matter; the weight-normed conv is initialised through its parameters."""
        if isinstance(module, nn.Conv1d):  # the positional conv, the only Conv1d
            weight = module.parametrizations.weight
            std = math.sqrt(4 / (module.kernel_size[0] * module.in_channels))
            init.normal_(weight.original1, mean=0.0, std=std)
            init.copy_(weight.original0, weight.original1.norm(dim=(0, 1), keepdim=True))
            init.zeros_(module.bias)
        elif isinstance(module, BeatsAttention) and module.gru_rel_pos:
            init.ones_(module.gru_rel_pos_const)
        else:
            super()._init_weights(module)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """With the code saved alongside (`register_for_auto_class`), map both Auto model classes in `auto_map`,
        so a repository saved from either class loads remotely as a backbone or as a classifier."""
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            self.config.auto_map = {
                **(getattr(self.config, "auto_map", None) or {}),
                "AutoModel": f"{module}.BeatsModel",
                "AutoModelForAudioClassification": f"{module}.BeatsForAudioClassification",
            }
        super().save_pretrained(save_directory, *args, **kwargs)


class BeatsModel(BeatsPreTrainedModel):
    """BEATs encoder. Input: normalised Kaldi fbank `(batch, frames, num_mel_bins)` from [`BeatsFeatureExtractor`]."""

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.embeddings = BeatsPatchEmbeddings(config)
        self.encoder = BeatsEncoder(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> BeatsModelOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            Normalised fbank frames, as returned by [`BeatsFeatureExtractor`].
        attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for real frames, 0 for padding. Down-sampled to patches with [`downsample_padding_mask`].
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        hidden_states = self.embeddings(input_values)
        padding_mask = None
        if attention_mask is not None:
            padding_mask = downsample_padding_mask(~attention_mask.bool(), hidden_states.size(1))
        hidden_states, all_hidden_states = self.encoder(hidden_states, padding_mask, output_hidden_states)
        return BeatsModelOutput(
            last_hidden_state=hidden_states, padding_mask=padding_mask, hidden_states=all_hidden_states
        )


class BeatsForAudioClassification(BeatsPreTrainedModel):
    """BEATs with a linear head on the mean of the non-padded patch vectors."""

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.beats = BeatsModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.encoder_embed_dim, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, or `(batch_size, num_labels)` floats for
        `problem_type="multi_label_classification"`, *optional*):
            Targets of the cross-entropy (single label) or binary cross-entropy (multi label) loss.
        """
        outputs = self.beats(
            input_values, attention_mask=attention_mask, output_hidden_states=output_hidden_states
        )
        hidden_states = outputs.last_hidden_state
        if outputs.padding_mask is None:
            pooled = hidden_states.mean(dim=1)
        else:
            keep = (~outputs.padding_mask).unsqueeze(-1).to(hidden_states.dtype)
            pooled = (hidden_states * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        # Called with the pooled vector as first argument: embedding losses read it through a pre-hook.
        logits = self.classifier(self.dropout(pooled))

        loss = None
        if labels is not None:
            if self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "BeatsForAudioClassification",
    "BeatsModel",
    "BeatsPreTrainedModel",
    "downsample_padding_mask",
]
