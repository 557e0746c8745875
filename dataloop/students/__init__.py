"""Students: the models being taught. See :class:`Student` for the contract."""

from dataloop.students.base import Student, TrainRecord

__all__ = ["Student", "TrainRecord"]
