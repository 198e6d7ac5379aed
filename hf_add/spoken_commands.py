"""A synthetic Speech-Commands-like dataset spoken by espeak-ng, for offline end-to-end runs.

Each clip is one word spoken by one synthetic speaker (an espeak-ng accent + voice variant, with its own
pitch and speed), resampled to 16 kHz, placed at a random time shift in exactly one second, scaled to a
random level and mixed with white/pink/brown noise at a random SNR. The output is an ``audiofolder``::

    output_dir/metadata.csv          file_name,label,speaker,voice,partition,fold
    output_dir/clips/000000.wav      16 kHz mono 16-bit PCM, 16000 samples (the word is in metadata.csv)

Speakers are dealt into folds 1-5 and each voice (accent + variant) is one speaker, so grouping by fold
or by ``partition`` (folds 1-3 train, 4 validation, 5 test) never shares a voice between training and
evaluation. ``load_dataset("audiofolder", data_dir=...)`` loads all rows into its "train" split with these
columns; the column is named ``partition`` rather than ``split`` only because ``Dataset.split`` is already
an attribute (the split's name), which a ``split`` column would silently be confused with. Everything is drawn from ``seed`` and the clip
index, so the same seed gives byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hf_add.data.audio import SAMPLING_RATE
from hf_add.data.presets import SPEECH_COMMANDS_WORDS
from hf_add.files import usual_mode

# espeak-ng's own (non-mbrola) English voices and its voice variants (``espeak-ng --voices=variant``).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
VARIANTS = (*(f"m{i}" for i in range(1, 8)), *(f"f{i}" for i in range(1, 6)), "klatt", "klatt2", "klatt3")
PITCH_RANGE = (25, 75)  # espeak-ng -p, 0-99
SPEED_RANGE = (130, 200)  # espeak-ng -s, words per minute
NUM_FOLDS = 5
PARTITIONS = {1: "train", 2: "train", 3: "train", 4: "validation", 5: "test"}
HALF_WIDTH = 16  # resampling filter taps on each side
COLUMNS = ("file_name", "label", "speaker", "voice", "partition", "fold")


@dataclass(frozen=True)
class Speaker:
    accent: str
    variant: str
    pitch: int
    speed: int
    fold: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def id(self) -> str:
        return f"{self.voice}-p{self.pitch}-s{self.speed}"


def make_speakers(num_voices: int, seed: int, exclude_voices: Collection[str] = ()) -> list[Speaker]:
    """``num_voices`` distinct voices with random pitch and speed, dealt round-robin into the folds; voices
    named in ``exclude_voices`` (``accent+variant``) are never chosen."""
    voices = [
        (accent, variant)
        for accent in ACCENTS
        for variant in VARIANTS
        if f"{accent}+{variant}" not in exclude_voices
    ]
    if not NUM_FOLDS <= num_voices <= len(voices):
        raise ValueError(f"num_voices must be between {NUM_FOLDS} and {len(voices)}, got {num_voices}")
    rng = np.random.default_rng([seed, 0])
    chosen = rng.permutation(len(voices))[:num_voices]
    return [
        Speaker(
            *voices[v],
            pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
            speed=int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
            fold=rank % NUM_FOLDS + 1,
        )
        for rank, v in enumerate(chosen)
    ]


def make_spoken_commands(
    output_dir: str | os.PathLike,
    *,
    words: list[str] | tuple[str, ...] = SPEECH_COMMANDS_WORDS,
    clips_per_word: int = 20,
    num_voices: int = 40,
    seed: int = 0,
    workers: int | None = None,
    noise_snr_db_range: tuple[float, float] = (5.0, 30.0),
    overwrite: bool = False,
    exclude_voices: Collection[str] = (),
) -> list[dict]:
    """Write the dataset to ``output_dir`` and return its metadata rows.

    The directory appears complete or not at all (built in a sibling temp dir, then renamed); a
    non-empty ``output_dir`` is refused unless ``overwrite``. Clip i of word w is spoken by speaker
    ``(w * clips_per_word + i) % num_voices``, so every speaker, fold and partition gets clips.
    ``noise_snr_db_range=(inf, inf)`` adds no noise; ``exclude_voices`` keeps voices out (e.g. another set's
    test voices).
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True (--overwrite) to replace it")
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    speakers = make_speakers(num_voices, seed, exclude_voices)
    jobs = [
        (w * clips_per_word + i, word, speakers[(w * clips_per_word + i) % num_voices])
        for w, word in enumerate(words)
        for i in range(clips_per_word)
    ]
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(output_dir)}.")
    os.chmod(build, usual_mode(directory=True))  # mkdtemp makes it private; the dataset is meant to be shared
    try:
        os.makedirs(os.path.join(build, "clips"))
        rows = []
        with ThreadPoolExecutor(workers or os.cpu_count()) as pool:  # the work runs in espeak-ng processes
            clips = pool.map(lambda job: render_clip(job[1], job[2], seed, job[0], noise_snr_db_range), jobs)
            for (index, word, speaker), clip in zip(jobs, clips, strict=True):
                # No word in the name: datasets reads a file named like a split ("…_train.wav", "…_test.wav")
                # as that split's, and the word "train" would then take the metadata away from every clip.
                file_name = f"clips/{index:06d}.wav"
                with open(os.path.join(build, file_name), "wb") as f:
                    f.write(clip)
                partition = PARTITIONS[speaker.fold]
                rows.append(
                    dict(
                        zip(
                            COLUMNS,
                            (file_name, word, speaker.id, speaker.voice, partition, speaker.fold),
                            strict=True,
                        )
                    )
                )
        with open(os.path.join(build, "metadata.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        _replace_dir(build, output_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return rows


def render_clip(
    word: str, speaker: Speaker, seed: int, index: int, noise_snr_db_range: tuple[float, float]
) -> bytes:
    """One clip as WAV bytes; its randomness comes from (seed, index) only."""
    rng = np.random.default_rng([seed, 1, index])
    pitch = int(np.clip(speaker.pitch + rng.integers(-4, 5), 0, 99))
    speed = int(speaker.speed + rng.integers(-10, 11))
    speech = resample(*speak(word, speaker.voice, pitch, speed), SAMPLING_RATE)
    loud = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max(initial=1e-9))
    speech = speech[loud[0] : loud[-1] + 1] if loud.size else speech
    if speech.size > SAMPLING_RATE:  # slow speakers: keep a random 1 s of the word
        start = int(rng.integers(0, speech.size - SAMPLING_RATE + 1))
        speech, offset = speech[start : start + SAMPLING_RATE], 0
    else:
        offset = int(rng.integers(0, SAMPLING_RATE - speech.size + 1))
    speech = speech * (rng.uniform(0.2, 0.9) / max(np.abs(speech).max(), 1e-9))
    audio = np.zeros(SAMPLING_RATE)
    audio[offset : offset + speech.size] = speech
    snr_db = rng.uniform(*noise_snr_db_range) if np.isfinite(noise_snr_db_range).all() else None
    if snr_db is not None:
        noise = colored_noise(SAMPLING_RATE, rng.choice(["white", "pink", "brown"]), rng)
        signal_power = np.mean(speech**2)
        audio += noise * np.sqrt(signal_power / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return _wav_bytes(np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2"))


def speak(word: str, voice: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    """espeak-ng's mono output (22.05 kHz) as floats in [-1, 1], and its sampling rate."""
    command = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", word]
    wav = subprocess.run(command, check=True, capture_output=True).stdout
    # With --stdout the RIFF sizes are placeholders (0x7ffff...): read the samples after the "data" tag.
    start = wav.index(b"data") + 8
    samples = np.frombuffer(wav[start : start + (len(wav) - start) // 2 * 2], dtype="<i2")
    return samples.astype(np.float64) / 32768.0, int.from_bytes(wav[24:28], "little")


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Windowed-sinc resampling in numpy (no torch in the worker threads); the kernel is cached."""
    offsets, kernel = _resampling_kernel(orig_rate, new_rate)
    n_out = -(-x.size * new_rate // orig_rate)
    phase = np.arange(n_out) % kernel.shape[0]
    start = np.arange(n_out) * orig_rate // new_rate
    padded = np.concatenate([np.zeros(HALF_WIDTH), x, np.zeros(HALF_WIDTH + 1)])
    return np.einsum("nk,nk->n", padded[start[:, None] + offsets + HALF_WIDTH], kernel[phase])


@functools.lru_cache
def _resampling_kernel(orig_rate: int, new_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Kaiser-windowed sinc taps for each of the ``new_rate / gcd`` output phases."""
    period = new_rate // math.gcd(orig_rate, new_rate)
    position = np.arange(period) * orig_rate / new_rate
    offsets = np.arange(-HALF_WIDTH + 1, HALF_WIDTH + 1)
    t = (np.floor(position)[:, None] + offsets) - position[:, None]
    cutoff = 0.95 * min(1.0, new_rate / orig_rate)  # just below the lower Nyquist frequency
    window = np.i0(8.6 * np.sqrt(np.clip(1 - (t / HALF_WIDTH) ** 2, 0, 1))) / np.i0(8.6)
    return offsets, cutoff * np.sinc(cutoff * t) * window


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) noise, shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[color]
    return np.fft.irfft(spectrum / frequency**exponent, n)


def _wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLING_RATE)
        f.writeframes(samples.tobytes())
    return buffer.getvalue()


def _replace_dir(build: str, output_dir: str) -> None:
    """Rename ``build`` to ``output_dir``; an existing one is moved aside first and deleted after."""
    if not os.path.exists(output_dir):
        os.replace(build, output_dir)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(output_dir), prefix=f".{os.path.basename(output_dir)}.old.")
    os.replace(output_dir, os.path.join(old, "data"))
    os.replace(build, output_dir)
    shutil.rmtree(old)
