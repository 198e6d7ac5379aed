#!/bin/bash
# The study at base size on a GPU machine: CE vs ADD {1,1,1,1}, one seed more per pass (the study resumes),
# so whatever the time allows ends with complete tables for the seeds done. Results go to $OUT.
#
# The machine it ran on (docs/study-gpu) had PyTorch and transformers but no datasets, FFmpeg or espeak-ng and
# no network, so .device/ carried: whl/ (datasets 5.0.0, dill 0.4.0, multiprocess 0.70.18 wheels for
# Python 3.12) and data.tar.xz (the study's spoken-commands folder, `tar cJf - -C runs/study data`);
# wav_torchcodec/ stands in for torchcodec (check_wav_decoding.py shows it decodes the clips bit-identically).
# On a machine with FFmpeg and `pip install -e .`, run hf-add study with the same arguments instead.
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SITE=${SITE:-/tmp/site}
[ -d $SITE ] || python3 -m pip install -q --no-index --no-deps --no-compile --target $SITE .device/whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD/scripts/gpu_study/wav_torchcodec:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, datasets, pyarrow, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'accelerate', accelerate.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 1
tar xJf .device/data.tar.xz -C /tmp || exit 1
S=${S:-/tmp/sg}
DEADLINE=${DEADLINE:-540}
for seeds in 1 2 3; do
  left=$((DEADLINE - SECONDS))
  [ $left -gt 30 ] || break
  timeout $left python3 scripts/study.py --output_dir $S --data_dir /tmp/data --model ${MODEL:-ast-base} \
    --learning_rate 1e-4 --device ${DEVICE:-cuda} --epochs ${EPOCHS:-20} --seeds $seeds \
    --rows "CE" "ADD λ={1,1,1,1}" 2>&1 | grep -v "examples/s\|Writing model\|Loading weights\|evaluating:" > $OUT/log_seeds$seeds.txt || break
  cp $S/paired.md $S/heatmaps.png $S/results.md $S/results.csv $S/runs.csv $OUT/ 2>/dev/null
  echo "seeds=$seeds done at ${SECONDS}s"
done
tail -3 $OUT/log_seeds*.txt
cat $OUT/results.md $OUT/paired.md
echo "total ${SECONDS}s"
