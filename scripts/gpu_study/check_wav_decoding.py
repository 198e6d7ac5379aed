"""Check that the WAV-only torchcodec stand-in decodes a folder of clips exactly as torchcodec does.

python scripts/gpu_study/check_wav_decoding.py runs/study/data/clips
"""

import glob
import importlib.util
import os
import sys

from torchcodec.decoders import AudioDecoder

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("standin", f"{here}/wav_torchcodec/torchcodec/decoders.py")
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)

files = sorted(glob.glob(os.path.join(sys.argv[1], "*.wav")))
worst = 0.0
for path in files:
    real = AudioDecoder(path, sample_rate=16000, num_channels=1).get_all_samples()
    ours = standin.AudioDecoder(path, sample_rate=16000, num_channels=1).get_all_samples()
    assert real.data.shape == ours.data.shape and real.sample_rate == ours.sample_rate, path
    worst = max(worst, (real.data - ours.data).abs().max().item())
print(f"{len(files)} clips, max |torchcodec - stand-in| = {worst}")
sys.exit(worst != 0.0)
