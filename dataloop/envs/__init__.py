"""The built-in task environments, importable and subclassable like any other code::

    from dataloop.envs.math import MathTask

    class MyMath(MathTask): ...

Each is registered by name in the ``dataloop.environments`` entry-point group of dataloop's own
``pyproject.toml``, the group a plug-in package uses too: ``arithmetic``
(:mod:`dataloop.envs.arithmetic`), ``math``, ``multiple_choice`` and ``code``. Their sample data
travels inside the package (``<env>/data/``, ``<env>/skills.json``).
"""
