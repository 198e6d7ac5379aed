"""Kaldi fbank of a whole batch in torch ops, equal (to float rounding) to the AST and BEATs feature extractors.

The extractors call ``torchaudio.compliance.kaldi.fbank`` once per clip; the same operations on a (clips,
frames, window) tensor are much faster (measured in ``scripts/benchmarks/bench_data.md``) and run on the
model's device if asked. Only the two extractors this recipe loads, with the options they use, are reproduced;
anything else goes back to the extractor itself (``BatchedFbank.for_extractor`` gives None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.compliance.kaldi import get_mel_banks
from transformers import ASTFeatureExtractor

from hf_add.data.audio import SAMPLING_RATE
from hf_add.models.beats import BeatsFeatureExtractor
from hf_add.models.beats.modeling_beats import downsample_padding_mask

PREEMPHASIS = 0.97
# BLAS computes a product of a few rows by another path, whose rounding differs: with at least this many rows,
# a clip's features are the same bits whatever batch it is in (the features cache relies on it).
MIN_GEMM_ROWS = 64
LOW_FREQUENCY = 20.0
EPSILON = torch.finfo(torch.float32).eps  # Kaldi's floor on the mel energies, before the log


def _window(kind: str, size: int) -> torch.Tensor:
    hann = torch.hann_window(size, periodic=False, dtype=torch.float32)
    return hann if kind == "hanning" else hann.pow(0.85)  # "povey": Kaldi's default


class BatchedFbank:
    """Log-mel fbank frames of a batch of 16 kHz waveforms, normalised and padded as the extractor does.

    ``kind`` "ast": features of each clip (no 2**15 scaling, Hanning window), zero frames appended or frames cut
    to ``max_length``, then ``(x - mean) / (2 std)``. ``kind`` "beats": waveforms truncated / zero-padded to
    the batch's length first, fbank of the padded audio (x 2**15, Povey window), ``(x - mean) / (2 std)`` and
    a frame ``attention_mask`` reduced from the sample mask as the BEATs extractor does.
    """

    def __init__(
        self,
        kind: str,
        num_mel_bins: int = 128,
        sampling_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        mean: float = 0.0,
        std: float = 0.5,
        max_length: int | None = None,
        pad_to_max_length: bool = False,
        padding_value: float = 0.0,
        return_attention_mask: bool = False,
    ):
        if kind not in ("ast", "beats"):
            raise ValueError(f"kind must be 'ast' or 'beats', got {kind!r}")
        # Everything the output depends on: the features cache is fingerprinted with it.
        self.config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.kind = kind
        self.window_size = int(sampling_rate * frame_length_ms / 1000)
        self.window_shift = int(sampling_rate * frame_shift_ms / 1000)
        self.fft_size = 1 << (self.window_size - 1).bit_length()
        self.mean, self.std = mean, std
        self.max_length, self.pad_to_max_length = max_length, pad_to_max_length
        self.padding_value, self.return_attention_mask = padding_value, return_attention_mask
        self.scale = 2.0**15 if kind == "beats" else 1.0
        self.window = _window("hanning" if kind == "ast" else "povey", self.window_size)
        banks, _ = get_mel_banks(
            num_mel_bins, self.fft_size, float(sampling_rate), LOW_FREQUENCY, 0.0, 100.0, -500.0, 1.0
        )
        self.mel_banks = F.pad(banks.float(), (0, 1))  # (mel bins, fft_size // 2 + 1): no weight on Nyquist
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def for_extractor(cls, extractor, extractor_kwargs: dict | None = None) -> BatchedFbank | None:
        """The batched equivalent of ``extractor(waves, **extractor_kwargs)``, or None where there is none."""
        kwargs = dict(extractor_kwargs or {})
        if getattr(extractor, "sampling_rate", None) != SAMPLING_RATE:
            return None  # the extractor itself rejects the 16 kHz waveforms, with its own message
        if type(extractor) is ASTFeatureExtractor and not kwargs:
            return cls(
                "ast",
                num_mel_bins=extractor.num_mel_bins,
                sampling_rate=extractor.sampling_rate,
                mean=extractor.mean if extractor.do_normalize else 0.0,
                std=extractor.std if extractor.do_normalize else 0.5,
                max_length=extractor.max_length,
            )
        if type(extractor) is BeatsFeatureExtractor and set(kwargs) <= {
            "padding",
            "truncation",
            "max_length",
        }:
            padding, truncation = kwargs.get("padding", "longest"), kwargs.get("truncation", False)
            if kwargs.get("max_length") is None and extractor.max_length is not None:
                kwargs["max_length"], truncation = extractor.max_length, True  # as the extractor does
            if padding not in ("longest", True, "max_length") or (
                (truncation or padding == "max_length") and not (truncation and kwargs.get("max_length"))
            ):
                return None  # pad_to_multiple_of, no padding, or max_length padding without truncation
            return cls(
                "beats",
                num_mel_bins=extractor.num_mel_bins,
                sampling_rate=extractor.sampling_rate,
                frame_length_ms=extractor.frame_length,
                frame_shift_ms=extractor.frame_shift,
                mean=extractor.fbank_mean,
                std=extractor.fbank_std,
                max_length=kwargs.get("max_length") if truncation else None,
                pad_to_max_length=padding == "max_length",
                padding_value=extractor.padding_value,
                return_attention_mask=extractor.return_attention_mask,
            )
        return None

    @property
    def per_clip(self) -> bool:
        """Whether a clip's features do not depend on the other clips of its batch (AST: fixed length), so
        they can be computed once and cached."""
        return self.kind == "ast"

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self.window.to(device), self.mel_banks.to(device))
        return self._on_device[device]

    def _frames(self, samples: int) -> int:
        return 0 if samples < self.window_size else 1 + (samples - self.window_size) // self.window_shift

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(clips, samples) float32 -> (clips, frames, mel bins) Kaldi log-mel energies (snip_edges framing).

        Up to the FFT the arithmetic is Kaldi's, operation for operation: a changed rounding there (say, taking
        the pre-emphasis difference on the whole waveform) moves the log energy of a mel bin that a frame barely
        excites by up to 1e-4. After the FFT, errors stay relative, and the steps are merged freely.
        """
        window, banks = self._constants(audio.device)
        frames = audio.unfold(-1, self.window_size, self.window_shift)  # (B, T, window), a view
        centred = frames - frames.mean(dim=-1, keepdim=True)  # DC offset of each frame
        previous = centred * PREEMPHASIS
        centred[..., 1:] -= previous[..., :-1]  # pre-emphasis, Kaldi's first sample: x0 - 0.97 x0
        centred[..., :1] -= previous[..., :1]
        spectrum = torch.view_as_real(torch.fft.rfft(centred.mul_(window), n=self.fft_size))
        power = (spectrum[..., 0].square() + spectrum[..., 1].square()).reshape(-1, banks.shape[1])
        rows = len(power)
        if rows < MIN_GEMM_ROWS:
            power = F.pad(power, (0, 0, 0, MIN_GEMM_ROWS - rows))
        energies = (power @ banks.T)[:rows]
        return energies.clamp_(min=EPSILON).log_().reshape(*frames.shape[:-1], -1)

    def __call__(
        self, waves: Sequence[np.ndarray | torch.Tensor], device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """``{"input_values": (B, frames, mel bins)[, "attention_mask": (B, frames)]}`` on ``device``."""
        device = torch.device(device or "cpu")
        waves = [
            torch.as_tensor(np.asarray(w, dtype=np.float32) if not torch.is_tensor(w) else w) for w in waves
        ]
        if any(w.dim() != 1 for w in waves):
            raise ValueError("Batched fbank takes mono audio: each waveform must be 1-D")
        lengths = [w.numel() for w in waves]
        with torch.autocast(device_type=device.type, enabled=False):
            if self.kind == "ast":
                return self._ast(waves, lengths, device)
            return self._beats(waves, lengths, device)

    def _padded(
        self, waves: list[torch.Tensor], length: int, value: float, device: torch.device
    ) -> torch.Tensor:
        audio = torch.full((len(waves), length), value, dtype=torch.float32)
        for row, wave in zip(audio, waves, strict=True):
            row[: min(length, wave.numel())] = wave[:length]
        return audio.to(device, non_blocking=True)

    def _ast(self, waves: list[torch.Tensor], lengths: list[int], device: torch.device) -> dict:
        frames = [self._frames(n) for n in lengths]
        if min(frames) == 0:
            raise ValueError(
                f"A clip of {min(lengths)} samples is shorter than one {self.window_size}-sample frame; "
                "drop such clips or pad them before feature extraction"
            )
        kept = min(max(frames), self.max_length)
        # Frames only see their own window: cutting the audio after the last kept frame changes nothing.
        samples = self.window_size + (kept - 1) * self.window_shift
        features = self.log_mel(self._padded(waves, samples, 0.0, device))  # AST: no 2**15 scaling
        if min(frames) < kept:  # the extractor appends zero frames to a short clip
            real = torch.arange(kept, device=device)[None, :] < torch.tensor(frames, device=device)[:, None]
            features.mul_(real.unsqueeze(-1))
        if kept < self.max_length:
            features = F.pad(features, (0, 0, 0, self.max_length - kept))
        return {"input_values": features.sub_(self.mean).div_(2 * self.std)}

    def _beats(self, waves: list[torch.Tensor], lengths: list[int], device: torch.device) -> dict:
        if self.max_length is not None:
            lengths = [min(n, self.max_length) for n in lengths]
        samples = self.max_length if self.pad_to_max_length else max(lengths)
        if samples < self.window_size:
            raise ValueError(f"Clips must have at least {self.window_size} samples (one frame)")
        audio = self._padded(waves, samples, self.padding_value, device)
        features = (self.log_mel(audio * self.scale) - self.mean) / (2 * self.std)
        batch = {"input_values": features}
        if self.return_attention_mask:
            sample_padding = (
                torch.arange(samples, device=device)[None, :] >= torch.tensor(lengths, device=device)[:, None]
            )
            frame_padding = downsample_padding_mask(sample_padding, features.shape[1])
            batch["attention_mask"] = (~frame_padding).to(torch.int32)
        return batch
