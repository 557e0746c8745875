"""Bad configs give one line that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataloop.config import dump_config, load_config, parse_overrides, validate_config
from dataloop.environments import load_task
from dataloop.errors import ConfigError
from dataloop.policies import check_policy, check_structure

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(tmp_path, text: str, **overrides):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return load_config(path, overrides)


def test_valid_config_and_overrides(tmp_path) -> None:
    cfg = _load(
        tmp_path, "iterations: 2\nstudent:\n  batch_size: 16\n", **{"policy.name": "uniform"}
    )
    assert (cfg.iterations, cfg.student.batch_size, cfg.policy.name) == (2, 16, "uniform")
    assert cfg.env.name == "arithmetic"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("student:\n  learning_rat: 0.1\n", "config field 'student.learning_rat': unknown field"),
        (
            "student:\n  learning_rate: fast\n",
            "config field 'student.learning_rate': Input should be a valid number",
        ),
        (
            "iterations: -1\n",
            "config field 'iterations': Input should be greater than or equal to 0",
        ),
        (
            "teacher:\n  backend: gpt\n",
            "config field 'teacher.backend': Input should be "
            "'llama-server', 'vllm', 'vllm-offline' or 'openai'",
        ),
        (
            "teacher:\n  concurrency: 16\n  max_concurrency: 8\n",
            "config field 'teacher': max_concurrency 8 is below concurrency 16",
        ),
        (
            "teacher:\n  backend: openai\n  replicas: 2\n",
            "replicas and devices start servers, which backend 'openai' does not",
        ),
        (
            "teacher:\n  replicas: 2\n  devices: [0, 1, 2]\n",
            "devices [0, 1, 2] do not split evenly over 2 replicas",
        ),
        (
            "teacher:\n  backend: vllm\n  replicas: 2\n  devices: [0, 1, 2, 3]\n",
            "each of the 2 vllm replicas 2 GPUs, but tensor_parallel_size is 1",
        ),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("iterations: [\n", "is not valid YAML"),
    ],
)
def test_bad_config_names_the_field(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert message in str(err.value)
    assert "\n" not in str(err.value).split("YAML")[0]


def test_llm2llm_policy_retrains_from_the_base_model_unless_told_otherwise() -> None:
    preset = validate_config({"policy": {"name": "llm2llm"}})
    assert preset.student.train_from == "base"
    # What the run folder keeps reads back the same (resume).
    assert validate_config(yaml.safe_load(dump_config(preset))).student.train_from == "base"
    chosen = {"policy": {"name": "llm2llm"}, "student": {"train_from": "previous"}}
    assert validate_config(chosen).student.train_from == "previous"
    assert validate_config({}).student.train_from == "previous"


def test_budget_ratio_policy_pays_one_query_per_example_unless_told_otherwise() -> None:
    assert validate_config({"policy": {"name": "budget-ratio"}}).engine.per_query == 1
    chosen = {"policy": {"name": "budget-ratio"}, "engine": {"per_query": 4}}
    assert validate_config(chosen).engine.per_query == 4
    assert validate_config({}).engine.per_query == 6


def test_missing_file_is_reported(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_override_into_a_non_section_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config field 'student': is not a section"):
        _load(tmp_path, "student: 3\n", **{"student.batch_size": 2})
    cfg = _load(tmp_path, "student:\n", **{"student.batch_size": 2})
    assert cfg.student.batch_size == 2


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid_and_their_tasks_load(path: Path) -> None:
    config = load_config(path)
    task = load_task(config.env.name, seed=config.seed, options=config.env.options)
    assert task.skills() and task.split("train")
    check_structure(config.policy.name, config.env.structure)  # the policy can plan for it
    check_policy(config.policy.name, **config.policy.options)


def test_set_pairs_are_yaml_overrides_on_a_file_or_the_defaults() -> None:
    overrides = parse_overrides(["iterations=2", "teacher.base_urls=[http://x/v1]", "name=a=b"])
    assert overrides == {"iterations": 2, "teacher.base_urls": ["http://x/v1"], "name": "a=b"}
    config = load_config(None, overrides)
    assert config.iterations == 2 and config.name == "a=b"
    with pytest.raises(ConfigError, match=r"--set 'iterations': expected key\.path=value"):
        parse_overrides(["iterations"])


@pytest.mark.parametrize(
    ("structure", "policy"),
    [
        ("open-ended", "error-guided"),
        ("skill-list", "weakest-skills"),
        ("skill-tree", "skill-tree"),
    ],
)
def test_the_default_policy_and_probes_follow_the_structure(structure: str, policy: str) -> None:
    config = validate_config({"env": {"structure": structure}})
    assert config.policy.name == policy
    assert config.env.feedback_per_skill == (20 if structure == "open-ended" else 0)
    named = validate_config({"env": {"structure": structure}, "policy": {"name": "uniform"}})
    assert named.policy.name == "uniform"  # a policy the user names is kept
    again = validate_config(yaml.safe_load(dump_config(config)))
    assert again == config  # the saved config resumes as the same run


def test_open_ended_without_probes_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"'env': structure open-ended .* env\.feedback_per_skill above 0"
    ):
        validate_config({"env": {"structure": "open-ended", "feedback_per_skill": 0}})


def test_a_structure_preset_leaves_the_policy_name_unset_where_it_changes_nothing() -> None:
    # bench dumps the base config with exclude_unset: a name the preset merely restated would
    # travel into every arm and override the arm's structure default.
    config = validate_config({"policy": {"examples_per_iteration": 5}})
    assert "name" not in config.policy.model_fields_set
