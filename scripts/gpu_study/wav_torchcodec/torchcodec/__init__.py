"""A WAV-only stand-in for torchcodec, for a machine without FFmpeg (the device machine).

It decodes 16-bit PCM WAV with Python's ``wave`` module exactly as torchcodec does (s16 / 32768 as
float32) and refuses anything else (other formats, resampling, channel changes), so results cannot change.
"""
