"""The tiny student's training step: TRL's SFTTrainer (dataloop's path) against a bare loop.

    python benchmarks/student_step.py --steps 200 --repeats 3

Both train the same freshly built tiny Llama on the same arithmetic examples, batch for batch:
a bare PyTorch loop (pad, forward, loss on the answer tokens, backward, AdamW step) and
``HFStudent.train`` (TRL ``SFTTrainer``, completion-only loss, the run's config). The two run
alternately, ``--repeats`` times, and the table gives the median time per step of each and the
median of the per-repeat ratios (this machine is shared and noisy: ratios measured side by
side are what to trust).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dataloop.config import StudentConfig
from dataloop.environments import load_task
from dataloop.students.base import TrainRecord
from dataloop.students.hf import HFStudent
from dataloop.students.tiny import build_model, build_tokenizer


def records(n_per_skill: int) -> list[TrainRecord]:
    """Arithmetic prompt/answer pairs, as the gym gives them to the student."""
    task = load_task("arithmetic", options={"train_per_skill": n_per_skill})
    return [
        TrainRecord(prompt=task.prompt(e.question), completion=task.target(e))
        for e in task.split("train")
    ]


def bare_loop(data: list[TrainRecord], steps: int, batch_size: int, lr: float) -> float:
    """Seconds per step of a plain PyTorch loop on the tiny model."""
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rows = []
    for r in data:
        prompt = tokenizer(r.prompt)["input_ids"]
        answer = tokenizer(r.completion, add_special_tokens=False)["input_ids"]
        ids = prompt + answer + [tokenizer.eos_token_id]
        rows.append((ids, [-100] * len(prompt) + answer + [tokenizer.eos_token_id]))
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(steps):
        pick = torch.randint(len(rows), (batch_size,), generator=generator).tolist()
        width = max(len(rows[i][0]) for i in pick)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, i in enumerate(pick):
            seq, lab = rows[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / steps


def trl_loop(data: list[TrainRecord], steps: int, batch_size: int, lr: float) -> float:
    """Seconds per step of dataloop's own training path (HFStudent -> TRL SFTTrainer)."""
    config = StudentConfig(steps_per_iteration=steps, batch_size=batch_size, learning_rate=lr)
    student = HFStudent(config, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        student.train(data, Path(tmp) / "checkpoint")
        return (time.perf_counter() - started) / steps


def main() -> None:
    """Alternate the two loops, print the medians and the paired ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = records(100)
    bare, trl, ratios = [], [], []
    for repeat in range(args.repeats):
        order = [bare_loop, trl_loop] if repeat % 2 == 0 else [trl_loop, bare_loop]
        times = {fn.__name__: fn(data, args.steps, args.batch_size, 1e-3) for fn in order}
        bare.append(times["bare_loop"])
        trl.append(times["trl_loop"])
        ratios.append(times["trl_loop"] / times["bare_loop"])
        print(f"repeat {repeat + 1}: bare {1000 * bare[-1]:.1f} ms/step, "
              f"TRL {1000 * trl[-1]:.1f} ms/step, ratio {ratios[-1]:.2f}")  # fmt: skip
    print()
    print("| loop | median ms/step |")
    print("|---|---:|")
    print(f"| bare PyTorch | {1000 * statistics.median(bare):.1f} |")
    print(f"| dataloop (TRL SFTTrainer) | {1000 * statistics.median(trl):.1f} |")
    print(f"\nmedian per-repeat ratio TRL / bare: {statistics.median(ratios):.2f} "
          f"({args.steps} steps of batch {args.batch_size}, torch threads "
          f"{torch.get_num_threads()})")  # fmt: skip


if __name__ == "__main__":
    main()
