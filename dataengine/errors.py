"""Errors the CLI turns into one clear line and an exit code."""


class DataEngineError(Exception):
    """Base class: the message is meant for the user, as one line."""


class UsageError(DataEngineError):
    """A bad argument or a source root that is not what it claims to be (exit code 2)."""


class SchemaError(DataEngineError):
    """A sample that breaks schema v1; the message names the sample and every bad field."""


class ValidationError(DataEngineError):
    """Shards on disk disagree with their manifest; the message names the first bad file."""
