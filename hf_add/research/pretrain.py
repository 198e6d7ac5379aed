"""An offline pretrained backbone: an AST trained with CE on a larger spoken corpus, for studies in the
paper's regime (fine-tuning a pretrained model), with nothing from the Hub.

The corpus is spoken by espeak-ng like the study's data (``hf_add.spoken_commands``), but from
``PRETRAIN_WORDS`` (none of the study's 35) and from voices that are not the study's test voices, so a
model fine-tuned from this backbone is still tested on words and voices it has never heard.

    hf-add pretrain --output_dir runs/backbone
    hf-add train --model_name_or_path runs/backbone ...     # a new head is made for the target labels

The defaults (ast-mini, 258 words × 40 clips from 60 voices, 40 epochs) were chosen so that the study's
fine-tuned CE row reaches the paper's regime on unseen voices; the measurements are in docs/study-pretrained.

``output_dir`` holds the model (config.json, model.safetensors, preprocessor_config.json, README.md), the
corpus (``data/``) and the training run (``training/``, with its results.json).
"""

from __future__ import annotations

import argparse
import os
import shutil

from hf_add.research.study import SPOKEN_COMMANDS_TRAINING
from hf_add.runs import RunConfig, run
from hf_add.spoken_commands import make_speakers, make_spoken_commands

HELP = "an offline pretrained AST backbone (CE on 258 other spoken words, other voices)"

# 258 short English words, none of them one of the study's 35 Speech Commands words.
_WORDS = """
    apple arm art baby back bag ball band bank bath beach bean bear beat bell belt bench bike bill black
    blue boat body bone book boot bottle box boy bread brick bridge brother brown brush bus butter button cake
    call camp candle card carpet carry chair chalk cheese chest chicken child chin church circle city clock
    cloud coat coffee coin cold color corn cotton cow crowd cup curtain dance dark day desk dinner door drum
    duck dust ear earth egg engine eye face fall farm feather field finger fire fish flag floor flower fly fog
    food foot fork fox friend frog fruit game garden gate girl glass glove goat gold grass green hair hammer
    hand hat head heart hill horse hour ice ink iron island jacket jam jelly juice key king kite knee knife
    lake lamp leaf leg lemon letter light lion lip lock lunch map market milk money monkey moon morning mother
    mountain mouse mouth music nail name neck needle nest net night nose note ocean orange owl page paint
    paper park party pen pencil pepper piano picture pig pillow pin pink pipe plane plant plate pocket potato
    queen rabbit rain ring river road rock roof room root rose salt sand school sea seed sheep shelf ship shirt
    shoe silver sister sky snake snow soap sock song soup spoon spring star steam stone storm street sugar
    summer sun table tail tea teeth ticket tiger toe tomato tongue tooth towel town toy train truck uncle
    valley village violin wall water wheel window winter wolf wood world yellow zebra
"""
PRETRAIN_WORDS = tuple(_WORDS.split())
STUDY_NUM_VOICES, STUDY_DATA_SEED, STUDY_TEST_FOLD = 40, 0, 5


def study_test_voices(num_voices: int = STUDY_NUM_VOICES, seed: int = STUDY_DATA_SEED) -> set[str]:
    """The voices of the study's test partition (``hf-add study``'s data with its defaults)."""
    return {s.voice for s in make_speakers(num_voices, seed) if s.fold == STUDY_TEST_FOLD}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; the epilog's layout kept as written."""


PRETRAIN_EPILOG = """duration on a 2-core CPU with the defaults: about 1 min to speak the corpus (258 words x 40 clips),
then about 12 min of training (ast-mini, 40 epochs); --max_steps 2 checks the set-up in under a minute.
Interrupted, it resumes: run the same command again.

output layout (under --output_dir):
  config.json, model.safetensors, preprocessor_config.json, README.md
                      the backbone: give the directory to hf-add train / study --model_name_or_path
  data/               the spoken corpus (an audiofolder), made once and reused
  training/           the training run: results.json, arguments.json, checkpoints, the final model
"""


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        prog="hf-add pretrain",
        description=__doc__.split("\n\n")[0],
        epilog=PRETRAIN_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--output_dir", required=True, help="where the backbone, its corpus and its run go")
    parser.add_argument("--model", default="ast-mini", help="a named AST config (ast-tiny, ast-mini, ...)")
    parser.add_argument("--words", type=int, default=len(PRETRAIN_WORDS), help="how many of PRETRAIN_WORDS")
    parser.add_argument("--clips_per_word", type=int, default=40, help="clips spoken per word")
    parser.add_argument("--num_voices", type=int, default=60, help="voices, none of the study's test voices")
    parser.add_argument("--epochs", type=float, default=40, help="training epochs")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="AdamW's, after 1 warm-up epoch")
    parser.add_argument("--seed", type=int, default=0, help="of training and of the corpus")
    parser.add_argument("--max_steps", type=int, default=-1, help="for a quick check; -1: all epochs")
    args = parser.parse_args(argv)
    if not 2 <= args.words <= len(PRETRAIN_WORDS):
        raise ValueError(f"--words must be between 2 and {len(PRETRAIN_WORDS)}, got {args.words}")
    data_dir = os.path.join(args.output_dir, "data")
    if not os.path.isdir(data_dir):
        make_spoken_commands(
            data_dir,
            words=PRETRAIN_WORDS[: args.words],
            clips_per_word=args.clips_per_word,
            num_voices=args.num_voices,
            seed=args.seed + 1000,  # other pitches, speeds and noise than the study's data
            exclude_voices=study_test_voices(),
        )
    training_dir = os.path.join(args.output_dir, "training")
    config = RunConfig.from_values(
        {
            "model_name_or_path": args.model,
            "ast_max_length": 100,
            **SPOKEN_COMMANDS_TRAINING,
            "data_dir": data_dir,
            "loss": "ce",
            "num_train_epochs": args.epochs,
            "max_steps": args.max_steps,
            "learning_rate": args.learning_rate,
            "seed": args.seed,
            "output_dir": training_dir,
            "resume_from_checkpoint": "true",
            "use_cpu": True,
        }
    )
    results = run(config).results
    (fold,) = results["folds"]
    for name in os.listdir(os.path.join(training_dir, fold["fold"])):  # the model files, at the top
        path = os.path.join(training_dir, fold["fold"], name)
        if os.path.isfile(path) and not name.startswith("."):
            shutil.copy2(path, os.path.join(args.output_dir, name))
    print(
        f"backbone: {args.output_dir} ({args.words} words, test accuracy on unheard voices "
        f"{100 * fold['accuracy']:.1f}%); use it with hf-add train --model_name_or_path {args.output_dir}"
    )
    return args.output_dir


if __name__ == "__main__":
    main()
