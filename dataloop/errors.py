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


class PluginError(DataloopError):
    """A plug-in (a policy, an environment, a strategy) failed while the run was going: its
    ``plan()`` raised or returned something that is not a Plan, or its checks raised on most
    candidates. The message names the plug-in (file and class) and what it did; the run stops
    where it is, so ``dataloop resume`` continues it once the plug-in is fixed."""


class DiskFull(DataloopError):
    """The disk filled up while the run was writing (a student's checkpoint): what was committed
    before stays, and ``dataloop resume`` continues once there is space."""
