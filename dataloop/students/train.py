"""The entry point of one launched training round (see :mod:`dataloop.students.launch`)::

accelerate launch --config_file fsdp.yaml -m dataloop.students.train JOB.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from dataloop.deprecation import moved_names
from dataloop.students.hf import HFStudent
from dataloop.students.launch import TrainJob

__getattr__ = moved_names(__name__, {"StudentTrainError": "dataloop.students.launch"})


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
