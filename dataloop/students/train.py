"""The entry point of one launched training round (see :mod:`dataloop.students.launch`)::

accelerate launch --config_file fsdp.yaml -m dataloop.students.train JOB.json
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from dataloop.students.hf import HFStudent
from dataloop.students.launch import TrainJob


def __getattr__(name: str) -> Any:
    # StudentTrainError moved to dataloop.students.launch; the old import keeps working until
    # 0.3.0, with a warning.
    if name == "StudentTrainError":
        warnings.warn(
            "dataloop.students.train.StudentTrainError moved to dataloop.students.launch; "
            "the old name goes in 0.3.0",
            DeprecationWarning,
            stacklevel=2,
        )
        from dataloop.students.launch import StudentTrainError

        return StudentTrainError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(job_file: str) -> None:
    """Entry point of each launched process."""
    job = TrainJob.model_validate_json(Path(job_file).read_text())
    # Inside the launched process training happens here, not in yet another launch.
    config = job.config.model_copy(update={"launcher": [], "eval_backend": "transformers"})
    student = HFStudent(config, seed=job.seed)
    if job.start_from is not None:
        student.load(job.start_from)
    student.train(job.records, job.output_dir)


if __name__ == "__main__":
    main(sys.argv[1])
