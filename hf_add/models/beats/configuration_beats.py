"""BEATs model configuration."""

from transformers import PretrainedConfig

SUPPORTED_ACTIVATIONS = ("gelu", "gelu_accurate", "relu", "tanh", "linear")


class BeatsConfig(PretrainedConfig):
    r"""
    Configuration of a BEATs audio encoder (Chen et al. 2022, "BEATs: Audio Pre-Training with Acoustic
    Tokenizers"). Field names follow the official `BEATsConfig`, so a checkpoint's `cfg` maps one to one; the
    defaults are those of the released `BEATs_iter3` checkpoint.

    Args:
        input_patch_size (`int`, defaults to 16):
            Side of the square fbank patches (frames x mel bins) cut by the patch embedding.
        embed_dim (`int`, defaults to 512):
            Channels of the patch embedding; projected to `encoder_embed_dim` when they differ.
        conv_bias (`bool`, defaults to `False`):
            Whether the patch embedding convolution has a bias.
        num_mel_bins (`int`, defaults to 128):
            Mel bins of the input fbank (must match the feature extractor).
        encoder_layers (`int`, defaults to 12):
            Number of transformer layers.
        encoder_embed_dim (`int`, defaults to 768):
            Width of the transformer.
        encoder_ffn_embed_dim (`int`, defaults to 3072):
            Inner width of the feed-forward blocks.
        encoder_attention_heads (`int`, defaults to 12):
            Number of attention heads.
        activation_fn (`str`, defaults to `"gelu"`):
            Feed-forward activation, one of `"gelu"`, `"gelu_accurate"` (tanh approximation), `"relu"`, `"tanh"`,
            `"linear"`.
        layer_wise_gradient_decay_ratio (`float`, defaults to 0.6):
            Gradient entering each layer is multiplied by this ratio (identity forward), so lower layers move less
            during fine-tuning. 1.0 disables it.
        layer_norm_first (`bool`, defaults to `False`):
            Pre-norm layers (and a final layer norm) instead of post-norm.
        deep_norm (`bool`, defaults to `True`):
            DeepNorm residual scaling `(2 * encoder_layers) ** 0.25` in post-norm layers.
        dropout (`float`, defaults to 0.0):
            Dropout on the residual branches and after the positional convolution.
        attention_dropout (`float`, defaults to 0.0):
            Dropout on the attention probabilities.
        activation_dropout (`float`, defaults to 0.0):
            Dropout after the feed-forward activation.
        encoder_layerdrop (`float`, defaults to 0.05):
            Probability of skipping a whole layer in training.
        dropout_input (`float`, defaults to 0.0):
            Dropout on the projected patch embeddings.
        conv_pos (`int`, defaults to 128):
            Kernel size of the convolutional positional embedding.
        conv_pos_groups (`int`, defaults to 16):
            Groups of the convolutional positional embedding.
        relative_position_embedding (`bool`, defaults to `True`):
            Add a bucketed relative position bias (shared by all layers) to the attention logits.
        num_buckets (`int`, defaults to 320):
            Number of relative position buckets.
        max_distance (`int`, defaults to 800):
            Distance at which the logarithmic buckets saturate.
        gru_rel_pos (`bool`, defaults to `True`):
            Gate the relative position bias with a function of the query (per layer).
        classifier_dropout (`float`, defaults to 0.1):
            Dropout on the pooled vector before the classification head (official `predictor_dropout`).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of linear layers.
    """

    model_type = "beats"
    attribute_map = {
        "hidden_size": "encoder_embed_dim",
        "num_hidden_layers": "encoder_layers",
        "num_attention_heads": "encoder_attention_heads",
        "intermediate_size": "encoder_ffn_embed_dim",
    }

    def __init__(
        self,
        input_patch_size=16,
        embed_dim=512,
        conv_bias=False,
        num_mel_bins=128,
        encoder_layers=12,
        encoder_embed_dim=768,
        encoder_ffn_embed_dim=3072,
        encoder_attention_heads=12,
        activation_fn="gelu",
        layer_wise_gradient_decay_ratio=0.6,
        layer_norm_first=False,
        deep_norm=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.05,
        dropout_input=0.0,
        conv_pos=128,
        conv_pos_groups=16,
        relative_position_embedding=True,
        num_buckets=320,
        max_distance=800,
        gru_rel_pos=True,
        classifier_dropout=0.1,
        initializer_range=0.02,
        **kwargs,
    ):
        if activation_fn not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"activation_fn={activation_fn!r} is not supported; use one of {SUPPORTED_ACTIVATIONS}"
            )
        if deep_norm and layer_norm_first:
            raise ValueError("deep_norm and layer_norm_first cannot both be set (DeepNorm is post-norm)")
        if encoder_embed_dim % encoder_attention_heads:
            raise ValueError(
                f"encoder_embed_dim={encoder_embed_dim} is not divisible by encoder_attention_heads={encoder_attention_heads}"
            )
        self.input_patch_size = input_patch_size
        self.embed_dim = embed_dim
        self.conv_bias = conv_bias
        self.num_mel_bins = num_mel_bins
        self.encoder_layers = encoder_layers
        self.encoder_embed_dim = encoder_embed_dim
        self.encoder_ffn_embed_dim = encoder_ffn_embed_dim
        self.encoder_attention_heads = encoder_attention_heads
        self.activation_fn = activation_fn
        self.layer_wise_gradient_decay_ratio = layer_wise_gradient_decay_ratio
        self.layer_norm_first = layer_norm_first
        self.deep_norm = deep_norm
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.encoder_layerdrop = encoder_layerdrop
        self.dropout_input = dropout_input
        self.conv_pos = conv_pos
        self.conv_pos_groups = conv_pos_groups
        self.relative_position_embedding = relative_position_embedding
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.gru_rel_pos = gru_rel_pos
        self.classifier_dropout = classifier_dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)


__all__ = ["BeatsConfig"]
