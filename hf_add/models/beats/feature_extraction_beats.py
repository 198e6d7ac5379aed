"""Feature extractor for BEATs: 16 kHz mono waveforms -> normalised Kaldi fbank, as the official preprocessing."""

import numpy as np
import torch
import torchaudio.compliance.kaldi as ta_kaldi
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import logging

from .modeling_beats import downsample_padding_mask

logger = logging.get_logger(__name__)


class BeatsFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns 16 kHz mono waveforms into the input of [`BeatsModel`]: Kaldi fbank frames of shape
    `(batch, frames, num_mel_bins)` and a frame-level `attention_mask` (1 = real frame).

    Clips are zero-padded as waveforms first (to the longest clip, or to `max_length` samples) and the fbank is
    computed on the padded waveform, as the official model does; the frame mask is the sample mask reduced with
    the official rule ([`downsample_padding_mask`]). The model reduces it again to patches, which reproduces the
    official padded outputs.

    Args:
        sampling_rate (`int`, defaults to 16000): Expected sampling rate; other rates are rejected.
        num_mel_bins (`int`, defaults to 128): Mel bins of the fbank.
        frame_length (`float`, defaults to 25.0): Window length in milliseconds.
        frame_shift (`float`, defaults to 10.0): Hop in milliseconds.
        fbank_mean (`float`, defaults to 15.41663): Mean subtracted from the log-mel energies (official value).
        fbank_std (`float`, defaults to 6.55582): Std of the log-mel energies; the official divides by twice it.
        max_length (`int`, *optional*): Longest waveform in samples; longer clips are cut to it unless a call
            passes its own `max_length`. Saved with the extractor, so that evaluation and `pipeline` cut clips
            as training did. `None`: no limit.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        num_mel_bins=128,
        frame_length=25.0,
        frame_shift=10.0,
        fbank_mean=15.41663,
        fbank_std=6.55582,
        return_attention_mask=True,
        max_length=None,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.num_mel_bins = num_mel_bins
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.fbank_mean = fbank_mean
        self.fbank_std = fbank_std
        self.max_length = max_length

    def _fbank(self, waveform: np.ndarray) -> torch.Tensor:
        # Kaldi works on 16-bit integer scale; the official scales [-1, 1] audio by 2**15.
        fbank = ta_kaldi.fbank(
            torch.from_numpy(waveform).unsqueeze(0) * 2**15,
            num_mel_bins=self.num_mel_bins,
            sample_frequency=self.sampling_rate,
            frame_length=self.frame_length,
            frame_shift=self.frame_shift,
        )
        return (fbank - self.fbank_mean) / (2 * self.fbank_std)

    def __call__(
        self,
        raw_speech: np.ndarray | list[np.ndarray] | list[list[float]],
        sampling_rate: int | None = None,
        padding: bool | str = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            raw_speech: One 1-D waveform or a list of them, float in [-1, 1] at `sampling_rate`.
            sampling_rate: Rate of `raw_speech`; must equal the extractor's.
            padding, max_length, truncation, pad_to_multiple_of: As [`SequenceFeatureExtractor.pad`], in
                samples (`padding="max_length", max_length=160000` gives fixed 10 s inputs). Without
                `max_length`, the extractor's own `max_length` (if set) applies, with truncation.
            return_attention_mask: Whether to return the frame-level mask (defaults to the extractor's setting).
            return_tensors: `"pt"` or `"np"`.
        """
        if sampling_rate is None:
            logger.warning("Pass `sampling_rate` to BeatsFeatureExtractor to catch mismatched audio.")
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"BEATs expects {self.sampling_rate} Hz audio, got sampling_rate={sampling_rate}"
            )

        is_batched = isinstance(raw_speech, (list, tuple)) or (
            isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1
        )
        waveforms = [np.asarray(w, dtype=np.float32) for w in (raw_speech if is_batched else [raw_speech])]
        if any(w.ndim != 1 for w in waveforms):
            raise ValueError("BeatsFeatureExtractor takes mono audio: each waveform must be 1-D")

        if max_length is None and self.max_length is not None:
            max_length, truncation = self.max_length, True
        padded = self.pad(
            BatchFeature({"input_values": waveforms}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=True,
            return_tensors="np",
        )
        window = int(self.sampling_rate * self.frame_length / 1000)
        if padded["input_values"].shape[1] < window:
            raise ValueError(f"Clips must have at least {window} samples (one {self.frame_length} ms frame)")

        fbank = torch.stack([self._fbank(w) for w in padded["input_values"]])
        features = {"input_values": fbank.numpy()}
        if return_attention_mask if return_attention_mask is not None else self.return_attention_mask:
            sample_padding = torch.from_numpy(padded["attention_mask"]) == 0
            frame_padding = downsample_padding_mask(sample_padding, fbank.size(1))
            features["attention_mask"] = (~frame_padding).numpy().astype(np.int32)
        return BatchFeature(features, tensor_type=return_tensors)


__all__ = ["BeatsFeatureExtractor"]
