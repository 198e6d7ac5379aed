import io
import os
import wave
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class AudioSamples:
    data: torch.Tensor
    sample_rate: int


@dataclass
class Metadata:
    path: str | None = None
    sample_rate: int = 0
    num_channels: int = 0


class AudioDecoder:
    def __init__(self, source, *, stream_index=None, sample_rate=None, num_channels=None):
        opened = source if not isinstance(source, (bytes, bytearray)) else io.BytesIO(source)
        if isinstance(opened, (str, os.PathLike)):
            opened = os.fspath(opened)
        with wave.open(opened, "rb") as wav:
            if wav.getsampwidth() != 2:
                raise RuntimeError(
                    f"stand-in decoder reads 16-bit PCM only, got {8 * wav.getsampwidth()}-bit"
                )
            rate, channels = wav.getframerate(), wav.getnchannels()
            frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        if sample_rate not in (None, rate) or num_channels not in (None, channels):
            raise RuntimeError(
                f"stand-in decoder cannot convert {rate} Hz x{channels} to {sample_rate} Hz x{num_channels}"
            )
        if frames.size == 0:
            raise RuntimeError("No audio frames were decoded")
        samples = frames.reshape(-1, channels).T.astype(np.float32) / 32768.0
        self._samples = AudioSamples(torch.from_numpy(np.ascontiguousarray(samples)), rate)
        self.metadata = Metadata(sample_rate=rate, num_channels=channels)

    def get_all_samples(self):
        return self._samples

    def get_samples_played_in_range(self, start_seconds=0.0, stop_seconds=None):
        start = int(round(start_seconds * self._samples.sample_rate))
        stop = None if stop_seconds is None else int(round(stop_seconds * self._samples.sample_rate))
        return AudioSamples(self._samples.data[:, start:stop], self._samples.sample_rate)


class VideoDecoder:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("the WAV-only torchcodec stand-in cannot decode video")
