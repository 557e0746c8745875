"""Students: the models being taught. See :class:`Student` for the contract."""

from dataloop.students.base import SamplingStudent, Student, TrainRecord

__all__ = ["SamplingStudent", "Student", "TrainRecord"]
