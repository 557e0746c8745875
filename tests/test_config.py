"""Bad configs give one line that names the field."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from dataloop.config import (
    LlamaServerTeacherConfig,
    OpenAITeacherConfig,
    TeacherConfig,
    VLLMOfflineTeacherConfig,
    VLLMTeacherConfig,
    dump_config,
    load_config,
    parse_overrides,
    validate_config,
)
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


# The teacher section: one model per backend, picked by ``backend``.

OLD_FLAT_TEACHER = """\
teacher:
  backend: openai
  model: gpt-4o-mini
  base_urls: [http://127.0.0.1:8000/v1]
  flavor: openai
  api_key_env: OPENAI_API_KEY
  kind: chat
  temperature: 0.7
  max_tokens: 128
  concurrency: 8
  max_concurrency: null
  endpoint_cooldown: 10.0
  timeout: 120.0
  retries: 4
  max_queries: 500
  max_total_tokens: null
  prices: {gpt-4o-mini: {prompt: 0.15, completion: 0.6}}
  max_cost: 1.0
  cache: true
  parallel: 8
  threads: 2
  chat_template: null
  tensor_parallel_size: 1
  max_model_len: null
  lora_modules: {}
  served_model: null
  max_lora_rank: null
  replicas: 1
  devices: []
  vllm_python: null
  server_args: []
  engine_args: {}
  seed: 0
  probe_timeout: 10.0
  max_connection_failures: 3
"""
"""A teacher section as every run folder saved before the per-backend models holds it: all
28 fields of the one flat model, the other backends' at their defaults."""


@pytest.mark.parametrize(
    ("section", "model", "own"),
    [
        ({}, LlamaServerTeacherConfig, {"threads": 2, "parallel": 8}),
        (
            {"backend": "llama-server", "threads": 4, "chat_template": "gemma"},
            LlamaServerTeacherConfig,
            {"threads": 4, "chat_template": "gemma"},
        ),
        (
            {
                "backend": "vllm",
                "model": "org/m",
                "served_model": "ad",
                "lora_modules": {"ad": "x"},
            },
            VLLMTeacherConfig,
            {"request_model": "ad", "lora_modules": {"ad": "x"}, "replicas": 1},
        ),
        (
            {"backend": "vllm-offline", "model": "org/m", "engine_args": {"enforce_eager": True}},
            VLLMOfflineTeacherConfig,
            {"engine_args": {"enforce_eager": True}, "tensor_parallel_size": 1},
        ),
        (
            {"backend": "openai", "model": "m", "base_urls": ["http://h:1/v1"], "flavor": "vllm"},
            OpenAITeacherConfig,
            {"base_urls": ["http://h:1/v1"], "flavor": "vllm", "probe_timeout": 10.0},
        ),
    ],
)
def test_each_backend_has_its_own_model_with_its_own_fields(section, model, own) -> None:
    teacher = validate_config({"teacher": section}).teacher
    assert type(teacher) is model
    assert {key: getattr(teacher, key) for key in own} == own
    # What a run folder keeps holds that backend's fields only, and reads back the same.
    saved = yaml.safe_load(dump_config(validate_config({"teacher": section})))["teacher"]
    assert set(saved) == set(model.model_fields)
    assert validate_config({"teacher": saved}).teacher == teacher


def test_a_teacher_section_saved_flat_by_an_older_dataloop_loads_unchanged(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the other backends' defaults are no news
        config = _load(tmp_path, OLD_FLAT_TEACHER)
    teacher = config.teacher
    assert isinstance(teacher, OpenAITeacherConfig)
    assert (teacher.model, teacher.kind, teacher.temperature, teacher.max_cost) == (
        "gpt-4o-mini",
        "chat",
        0.7,
        1.0,
    )
    assert teacher.prices["gpt-4o-mini"].completion == 0.6
    # --set still reaches every field, the backend's own included.
    over = _load(tmp_path, OLD_FLAT_TEACHER, **{"teacher.timeout": 30, "teacher.backend": "vllm"})
    assert isinstance(over.teacher, VLLMTeacherConfig) and over.teacher.timeout == 30


def test_another_backends_field_set_by_hand_is_ignored_with_a_warning(tmp_path) -> None:
    text = "teacher:\n  backend: openai\n  model: m\n  base_urls: [http://h:1/v1]\n  threads: 8\n"
    with pytest.warns(FutureWarning, match="'threads' is not used by backend 'openai'"):
        teacher = _load(tmp_path, text).teacher
    assert not hasattr(teacher, "threads")
    # served_model named the model requests use on every backend: it still does.
    text = "teacher:\n  backend: openai\n  model: m\n  base_urls: [http://h:1/v1]\n"
    with pytest.warns(FutureWarning, match="write it as model"):
        teacher = _load(tmp_path, text + "  served_model: ad\n").teacher
    assert teacher.model == "ad"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "vllm", "modell": "x"}, "config field 'teacher.modell': unknown field"),
        (
            {"backend": "vllm", "tensor_parallel_size": "two"},
            "config field 'teacher.tensor_parallel_size': Input should be a valid integer",
        ),
        (
            {"backend": "openai", "base_urls": ["ftp://h"]},
            "config field 'teacher.base_urls': 'ftp://h' is not an http:// or https:// URL",
        ),
        ({"backend": "openai", "timeout": 0}, "config field 'teacher.timeout': Input should be"),
    ],
)
def test_a_wrong_teacher_field_is_one_line_naming_it(section, message) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config({"teacher": section})
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=re.escape(message)):  # the same through --set
        load_config(None, {f"teacher.{key}": value for key, value in section.items()})


def test_the_judge_endpoint_is_a_running_server_and_its_errors_name_it() -> None:
    endpoint = {"backend": "openai", "model": "j", "base_urls": ["http://h:1/v1"]}
    judge = validate_config({"engine": {"judge": {"endpoint": endpoint}}}).engine.judge
    assert judge is not None and isinstance(judge.endpoint, OpenAITeacherConfig)
    with pytest.raises(ConfigError, match=r"'engine\.judge\.endpoint': the judge's endpoint must"):
        validate_config({"engine": {"judge": {"endpoint": {"model": "j"}}}})
    bad = {**endpoint, "retries": -1}
    with pytest.raises(ConfigError, match=r"'engine\.judge\.endpoint\.retries': Input should"):
        validate_config({"engine": {"judge": {"endpoint": bad}}})


def test_calling_teacher_config_still_builds_the_backends_model_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="TeacherConfig"):
        teacher = TeacherConfig(backend="vllm", model="org/m", tensor_parallel_size=2)
    assert isinstance(teacher, VLLMTeacherConfig) and isinstance(teacher, TeacherConfig)
    assert teacher.tensor_parallel_size == 2
    with pytest.warns(DeprecationWarning):
        assert type(TeacherConfig()) is LlamaServerTeacherConfig
