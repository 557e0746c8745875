"""HFStudent on the tiny Llama: what train_from, LoRA, chat format and the engine hook do."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from dataloop.config import LoraSettings, StudentConfig
from dataloop.errors import ConfigError
from dataloop.students.base import Student, TrainRecord
from dataloop.students.hf import HFStudent
from dataloop.students.launch import TrainJob
from dataloop.students.loading import (
    encode_prompts,
    load_checkpoint,
    resolve_dtype,
    student_device,
)
from dataloop.students.vllm_eval import Served

RECORDS = [
    TrainRecord(prompt=f"max {a} {b}\n", completion=str(max(a, b)))
    for a in range(5)
    for b in range(4)
]
PROMPTS = ["max 1 3\n", "max 4 0\n", "max 2 2\n"]


class LoraAtStart(TrainerCallback):
    """Records the size of the LoRA B matrices when each round of training starts."""

    def __init__(self) -> None:
        self.b_norms: list[float] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        b = [p.detach().abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n]
        assert b, "no LoRA parameters in the model being trained"
        self.b_norms.append(sum(b))


def lora_student(train_from: str, callback: TrainerCallback | None = None) -> HFStudent:
    config = StudentConfig(
        method="lora",
        lora=LoraSettings(r=4, alpha=8),
        train_from=train_from,
        steps_per_iteration=3,
        batch_size=8,
        learning_rate=1e-2,
        max_new_tokens=3,
    )
    return HFStudent(config, callbacks=[callback] if callback else None)


def cpu_copy(model) -> dict[str, torch.Tensor]:
    """The model's parameters, copied to the CPU (the model may live on a GPU)."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters()}


def base_weights(student: HFStudent) -> dict[str, torch.Tensor]:
    return {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p
        for n, p in cpu_copy(student.model).items()
        if "lora_" not in n
    }


def test_lora_train_from_previous_continues_the_same_adapter(tmp_path) -> None:
    seen = LoraAtStart()
    student = lora_student("previous", seen)
    assert isinstance(student, Student)
    first = student.train(RECORDS, tmp_path / "iteration-0")
    saved = load_checkpoint(student.config, first)
    saved_b = sum(p.abs().sum().item() for n, p in saved.named_parameters() if "lora_B" in n)
    student.train(RECORDS, tmp_path / "iteration-1")
    assert seen.b_norms[0] == 0.0  # a new adapter starts with B = 0
    assert seen.b_norms[1] == pytest.approx(saved_b)  # round two starts where round one ended
    assert saved_b > 0


def test_lora_train_from_base_starts_a_fresh_adapter_on_untouched_weights(tmp_path) -> None:
    seen = LoraAtStart()
    student = lora_student("base", seen)
    before = base_weights(student)
    for i in range(2):
        student.train(RECORDS, tmp_path / f"iteration-{i}")
    assert seen.b_norms == [0.0, 0.0]
    after = base_weights(student)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


class WeightsAtStart(TrainerCallback):
    """Copies the model's parameters when each round of training starts."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, torch.Tensor]] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.rounds.append(cpu_copy(model))


def test_full_train_from_base_reloads_the_base_weights(tmp_path) -> None:
    config = StudentConfig(train_from="base", steps_per_iteration=2, batch_size=8)
    seen = WeightsAtStart()
    student = HFStudent(config, callbacks=[seen])
    initial = cpu_copy(student.model)
    student.train(RECORDS, tmp_path / "iteration-0")
    trained = cpu_copy(student.model)
    assert any(not torch.equal(initial[n], trained[n]) for n in initial)
    student.train(RECORDS, tmp_path / "iteration-1")
    start = seen.rounds[1]  # what the second round started from
    assert all(torch.equal(initial[n], p) for n, p in start.items())


def test_each_iteration_saves_an_adapter_that_reloads_to_the_same_answers(tmp_path) -> None:
    student = lora_student("previous")
    for i in range(2):
        path = student.train(RECORDS, tmp_path / f"iteration-{i}")
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {
            f.name for f in path.iterdir()
        }
        assert not (path / "model.safetensors").exists()  # the adapter, not a merged copy
    reloaded = HFStudent(student.config)
    reloaded.load(tmp_path / "iteration-1")
    assert reloaded.predict(PROMPTS) == student.predict(PROMPTS)
    stale = HFStudent(student.config)
    stale.load(tmp_path / "iteration-0")
    ids = encode_prompts(student.tokenizer, PROMPTS[:1], "plain")
    with torch.no_grad():
        logits = [
            s.model(torch.tensor(ids, device=s.model.device)).logits.cpu() for s in (student, stale)
        ]
    assert not torch.allclose(*logits)  # iteration-1 is a different adapter from iteration-0


def test_evaluation_leaves_the_model_trainable(tmp_path, monkeypatch) -> None:
    # On a GPU the model moves to the device when it first evaluates; under inference mode its
    # parameters would become inference tensors and the next train() would fail ("Inference
    # tensors cannot be saved for backward"). Evaluation runs outside inference mode.
    student = HFStudent(StudentConfig(steps_per_iteration=2, batch_size=8, max_new_tokens=2))
    modes: list[bool] = []
    generate = student.model.generate

    def recording_generate(*args, **kwargs):
        modes.append(torch.is_inference_mode_enabled())
        return generate(*args, **kwargs)

    monkeypatch.setattr(student.model, "generate", recording_generate)
    student.predict(PROMPTS)
    assert modes == [False]
    student.train(RECORDS, tmp_path / "iteration-0")
    assert not any(p.is_inference() for p in student.model.parameters())
    assert len(student.predict(PROMPTS)) == len(PROMPTS)


def test_chat_format_needs_a_template_and_trains_on_the_assistant_turn(tmp_path) -> None:
    with pytest.raises(ConfigError, match=re.escape("student.prompt_format")):
        HFStudent(StudentConfig(prompt_format="chat"))
    template = tmp_path / "chat.jinja"
    template.write_text(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    config = StudentConfig(
        prompt_format="chat", chat_template=template, steps_per_iteration=2, batch_size=8
    )
    student = HFStudent(config)
    ids = encode_prompts(student.tokenizer, ["max 1 2\n"], "chat")[0]
    assert student.tokenizer.decode(ids) == "<user>max 1 2\n<assistant>"
    path = student.train(RECORDS, tmp_path / "iteration-0")
    # The checkpoint carries the template, so vLLM (or a reload) formats prompts the same way.
    assert AutoTokenizer.from_pretrained(path).chat_template == template.read_text()
    assert len(student.predict(PROMPTS)) == len(PROMPTS)


def test_training_settings_reach_trl(tmp_path) -> None:
    config = StudentConfig(
        epochs=2,
        lr_scheduler="cosine",
        warmup_ratio=0.1,
        gradient_accumulation_steps=4,
        batch_size=3,
        gradient_checkpointing=True,
    )
    args = HFStudent(config).sft_config(tmp_path)
    assert (args.max_steps, args.num_train_epochs) == (-1, 2)
    assert args.lr_scheduler_type == "cosine" and args.warmup_steps == 0.1
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (3, 4)
    assert args.activation_checkpointing and args.completion_only_loss


def test_accelerate_launch_cpu_trains_on_the_cpu_of_a_gpu_machine(tmp_path, monkeypatch) -> None:
    # `accelerate launch --cpu` says ACCELERATE_USE_CPU=True to the launched process; passed on
    # as use_cpu, or the Trainer puts the batches on cuda:0 and the model on the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert student_device().type == "cpu" and resolve_dtype("auto") == torch.float32
    args = HFStudent(StudentConfig()).sft_config(tmp_path)
    assert args.use_cpu and not args.bf16
    monkeypatch.setenv("ACCELERATE_USE_CPU", "False")
    assert student_device().type == "cuda" and resolve_dtype("auto") == torch.bfloat16


class RecordingEngine:
    """Records what the student asks of its engine; answers with what it serves."""

    def __init__(self, student_model: list) -> None:
        self.calls: list[str] = []
        self.served: Served | None = None
        self.student_model = student_model

    def serve(self, target: Served) -> None:
        device = next(self.student_model[0].model.parameters()).device.type
        self.calls.append(f"serve adapter={target.adapter} trainer_on={device}")
        self.served = target

    def sleep(self) -> None:
        self.calls.append("sleep")

    def generate(self, prompt_ids: list[list[int]]) -> list[str]:
        assert self.served is not None
        return [f"{self.served.path}:{len(ids)}" for ids in prompt_ids]

    def close(self) -> None:
        self.calls.append("close")


def test_the_engine_sleeps_while_training_and_serves_each_new_adapter(tmp_path) -> None:
    holder: list = []
    engine = RecordingEngine(holder)
    config = lora_student("previous").config
    student = HFStudent(config, evaluator=engine)
    holder.append(student)
    assert student.predict(["max 1 2\n"]) == ["tiny:8"]  # before training: the base model
    path = student.train(RECORDS, tmp_path / "iteration-0")
    assert student.predict(["max 1 2\n"]) == [f"{path}:8"]
    student.close()
    assert engine.calls == [
        "serve adapter=False trainer_on=cpu",
        "sleep",
        "serve adapter=True trainer_on=cpu",
        "close",
    ]


@pytest.mark.integration  # two `accelerate launch` processes: ~40 s on a quiet machine
def test_launched_rounds_continue_from_the_previous_checkpoint(tmp_path) -> None:
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = [str(accelerate), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1"]
    config = lora_student("previous").config.model_copy(update={"launcher": launcher})
    student = HFStudent(config)
    for i in range(2):
        student.train(RECORDS, tmp_path / f"iteration-{i}")
    jobs = [
        TrainJob.model_validate_json((tmp_path / f"iteration-{i}" / "train-job.json").read_text())
        for i in range(2)
    ]
    assert [j.start_from for j in jobs] == [None, tmp_path / "iteration-0"]
    assert (tmp_path / "iteration-1" / "adapter_model.safetensors").is_file()
    # this process now holds what the launched round saved
    reloaded = HFStudent(config.model_copy(update={"launcher": []}))
    reloaded.load(tmp_path / "iteration-1")
    assert reloaded.predict(PROMPTS) == student.predict(PROMPTS)


@pytest.mark.parametrize("prompt_format", ["plain", "chat"])
def test_losses_are_each_records_sft_loss_and_train_nothing(tmp_path, prompt_format) -> None:
    """Per record, the loss TRL's SFT would take on the very row it builds (completion tokens
    only), whatever the padding of the batch; the weights do not move."""
    from trl import SFTTrainer

    template = tmp_path / "chat.jinja"
    template.write_text(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    config = StudentConfig(
        steps_per_iteration=30,
        batch_size=8,
        learning_rate=1e-2,
        prompt_format=prompt_format,
        chat_template=template if prompt_format == "chat" else None,
    )
    student = HFStudent(config)
    # Rows of different lengths, so batches are padded.
    records = [
        *RECORDS,
        TrainRecord(prompt="max 10 3\n", completion="10"),
        TrainRecord(prompt="m\n", completion="123"),
    ]
    trainer = SFTTrainer(
        model=student.model,
        args=student.sft_config(tmp_path / "probe"),
        train_dataset=student.sft_dataset(records),
        processing_class=student.tokenizer,
    )
    before = cpu_copy(student.model)
    got = student.losses(records)
    assert all(torch.equal(before[n], p) for n, p in cpu_copy(student.model).items())
    device = student_device()
    for row, loss in zip(trainer.train_dataset, got, strict=True):
        ids = torch.tensor([row["input_ids"]], device=device)
        # TRL's row marks the completion by labels (-100 elsewhere) or by a completion mask.
        if "labels" in row:
            labels = torch.tensor([row["labels"]], device=device)
        else:
            mask = torch.tensor([row["completion_mask"]], device=device)
            labels = ids.masked_fill(mask == 0, -100)
        with torch.no_grad():
            expected = student.model(input_ids=ids, labels=labels).loss.item()
        assert loss == pytest.approx(expected, rel=1e-4, abs=1e-5)
    # What the student trained on, it now fits better than what it did not.
    student.train(records[:10], tmp_path / "iteration-0")
    after = student.losses(records)
    drop = [b - a for b, a in zip(got, after, strict=True)]
    assert sum(drop[:10]) / 10 > sum(drop[10:]) / len(drop[10:])


def test_sample_draws_n_seeded_answers_per_prompt_and_leaves_predict_greedy() -> None:
    student = lora_student("previous")  # the untrained tiny model: answers are noise
    greedy = student.predict(PROMPTS)
    drawn = student.sample(PROMPTS, 4, temperature=2.0)
    assert [len(answers) for answers in drawn] == [4, 4, 4]
    assert drawn == student.sample(PROMPTS, 4, temperature=2.0)  # seeded: a rerun draws the same
    assert any(len(set(answers)) > 1 for answers in drawn)  # sampled, not four greedy copies
    assert student.predict(PROMPTS) == greedy


class SamplingEngine:
    """A vLLM evaluator stand-in that says which sampling each answer was asked with."""

    def serve(self, target: Served) -> None:
        pass

    def sleep(self) -> None:
        pass

    def generate(
        self, prompt_ids: list[list[int]], temperature: float | None = None, n: int = 1
    ) -> list[str]:
        return [f"{len(ids)}@{temperature}#{j}" for ids in prompt_ids for j in range(n)]

    def close(self) -> None:
        pass


def test_sample_through_the_vllm_evaluator_asks_it_for_n_answers_at_the_temperature() -> None:
    student = HFStudent(lora_student("previous").config, evaluator=SamplingEngine())
    drawn = student.sample(["max 1 2\n", "max 10 2\n"], 2, temperature=0.7)
    assert drawn == [["8@0.7#0", "8@0.7#1"], ["9@0.7#0", "9@0.7#1"]]


def test_student_train_error_keeps_its_old_import_with_a_warning() -> None:
    from dataloop.students import launch, train

    with pytest.warns(DeprecationWarning, match=r"dataloop\.students\.launch"):
        moved = train.StudentTrainError
    assert moved is launch.StudentTrainError
    with pytest.raises(AttributeError):
        train.NoSuchName  # noqa: B018
