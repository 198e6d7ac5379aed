class AudioEncoder:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("the WAV-only torchcodec stand-in cannot encode audio")
