"""Launching one training round in its own process (``accelerate launch``, ``torchrun``,
DeepSpeed): the job file and the command. :mod:`dataloop.students.train` is what each launched
process runs.

``HFStudent`` launches it when ``student.launcher`` is set::

    accelerate launch --config_file fsdp.yaml -m dataloop.students.train JOB.json

Each rank builds the student, continues from ``start_from`` if given, and trains through the
same ``SFTTrainer`` code; the Trainer handles the distribution and saves from the main rank.
The loop process (teacher calls, evaluation) is never replicated.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydantic import BaseModel

from dataloop.config import StudentConfig
from dataloop.errors import DataloopError
from dataloop.students.base import TrainRecord


class StudentTrainError(DataloopError):
    """A training round launched in a subprocess failed."""


class TrainJob(BaseModel):
    """Everything one launched training round needs, written as JSON beside its output."""

    config: StudentConfig
    seed: int = 0
    records: list[TrainRecord]
    output_dir: Path
    start_from: Path | None = None
    """Checkpoint to continue (``train_from: previous``); None trains the base model."""


def launch(job: TrainJob) -> None:
    """Run ``job`` under ``job.config.launcher``; its log goes to ``output_dir/train.log``."""
    job.output_dir.mkdir(parents=True, exist_ok=True)
    job_file = job.output_dir / "train-job.json"
    job_file.write_text(job.model_dump_json())
    log_path = job.output_dir / "train.log"
    command = [*job.config.launcher, "-m", "dataloop.students.train", str(job_file)]
    with log_path.open("wb") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise StudentTrainError(
            f"training round failed (exit {code}) under student.launcher {job.config.launcher}; "
            f"see {log_path}:\n{tail}"
        )
