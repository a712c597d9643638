"""Errors a user can cause and fix. The command line prints their message without a traceback."""


class VideoMAEError(Exception):
    """Base class: the message says what was wrong and what to do."""


class ConfigError(VideoMAEError, ValueError):
    """A model, mask or training setting that cannot work (wrong shape, unsupported value, unknown name)."""


class CheckpointError(VideoMAEError):
    """A checkpoint that cannot be read or does not fit the model."""


class DataError(VideoMAEError):
    """A manifest, video file or data setting that cannot be used."""
