"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class DataloopError(Exception):
    """Base class: the message names what is wrong and what to do about it."""


class ConfigError(DataloopError):
    """A run configuration (YAML or keyword arguments) is invalid."""


class RegistryError(DataloopError):
    """A name or path given for a plug-in (environment, policy, strategy) cannot be resolved."""


class BudgetExhausted(DataloopError):
    """The teacher's query or token budget does not allow another request."""


class TeacherError(DataloopError):
    """The teacher LLM could not be reached or kept failing after retries."""


class TeacherUnavailable(DataloopError):
    """The teacher cannot be reached, or answered none of an iteration's requests.

    Unlike a :class:`TeacherError` (one request failed; the engine carries on), this stops the
    run where it is, before the iteration's data is recorded, so ``dataloop resume`` continues
    it once the teacher is back.
    """
