"""Write a synthetic Speech-Commands-like audiofolder spoken by espeak-ng (see hf_add.data.spoken_commands).

python scripts/make_spoken_commands.py --output_dir data/spoken_commands --clips_per_word 20
"""

from hf_add.data.spoken_commands import main

if __name__ == "__main__":
    main()
