"""A GGUF student's tokenizer follows the file's metadata: BOS/EOS, Gemma 3's chat template.

The GGUFs here are written with the ``gguf`` package: a Gemma 3 header and a sentencepiece
vocabulary of a few tokens, enough for transformers to build the tokenizer in well under a
second. The packaged Gemma itself is checked in tests/integration/test_student_gemma.py.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from transformers import AutoTokenizer

from dataloop.config import StudentConfig
from dataloop.students.gguf_header import read_gguf_metadata, read_header
from dataloop.students.loading import (
    END_OF_TURN,
    GEMMA3_CHAT_TEMPLATE,
    encode_prompts,
    load_tokenizer,
    stop_token_ids,
)

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", END_OF_TURN]
PIECES = ["▁", "a", "b", "h", "i", "▁a", "▁b", "hi", "▁hi"]


def write_gguf(path: Path, *, add_bos: bool, add_eos: bool) -> Path:
    """A Gemma 3 GGUF with a tiny vocabulary and the given BOS/EOS flags (no chat template)."""
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_feed_forward_length(16)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_tokenizer_model("llama")
    tokens = SPECIALS + PIECES
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    # llama.cpp's token types: 3 control, 1 normal.
    writer.add_token_types([3] * len(SPECIALS) + [1] * len(PIECES))
    writer.add_pad_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_bos_token_id(2)
    writer.add_unk_token_id(3)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(("add_bos", "add_eos"), [(True, False), (False, True)])
def test_a_gguf_tokenizer_adds_bos_and_eos_as_its_metadata_says(tmp_path, add_bos, add_eos):
    path = write_gguf(tmp_path / "m.gguf", add_bos=add_bos, add_eos=add_eos)
    metadata = read_gguf_metadata(path)
    assert (metadata.add_bos_token, metadata.add_eos_token) == (add_bos, add_eos)
    assert metadata.architecture == "gemma3" and not metadata.has_chat_template

    tokenizer = load_tokenizer(StudentConfig(model=str(tmp_path), gguf_file="m.gguf"))
    ids = tokenizer("hi ab")["input_ids"]
    assert (ids[0] == tokenizer.bos_token_id) == add_bos
    assert (ids[-1] == tokenizer.eos_token_id) == add_eos
    # What convert_gguf writes keeps it: a reload (transformers or vLLM) adds the same tokens.
    tokenizer.save_pretrained(tmp_path / "converted")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "converted")
    assert reloaded("hi ab")["input_ids"] == ids


def test_a_gemma3_gguf_without_a_template_gets_gemma3_turns(tmp_path):
    write_gguf(tmp_path / "m.gguf", add_bos=True, add_eos=False)
    config = StudentConfig(model=str(tmp_path), gguf_file="m.gguf", prompt_format="chat")
    tokenizer = load_tokenizer(config)
    assert tokenizer.chat_template == GEMMA3_CHAT_TEMPLATE.read_text()
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": " hi "}], add_generation_prompt=True, tokenize=False
    )
    assert rendered == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    # One BOS: the template writes it, the tokenizer does not add another.
    [ids] = encode_prompts(tokenizer, ["hi"], "chat")
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    # Generation stops at the end of a turn as well as at EOS, as llama.cpp does.
    assert stop_token_ids(tokenizer) == [1, SPECIALS.index(END_OF_TURN)]
    tokenizer.save_pretrained(tmp_path / "converted")
    assert AutoTokenizer.from_pretrained(tmp_path / "converted").chat_template == (
        GEMMA3_CHAT_TEMPLATE.read_text()
    )


def test_a_configured_chat_template_wins_over_the_gemma3_default(tmp_path):
    write_gguf(tmp_path / "m.gguf", add_bos=True, add_eos=False)
    template = tmp_path / "mine.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    config = StudentConfig(model=str(tmp_path), gguf_file="m.gguf", chat_template=template)
    assert load_tokenizer(config).chat_template == template.read_text()


def test_the_header_reader_agrees_with_the_gguf_package(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", add_bos=True, add_eos=False)
    fields = gguf.GGUFReader(path).fields
    header = read_header(path)
    # Every scalar and string the gguf package reads, and nothing else (arrays are skipped).
    expected = {
        key: (
            bytes(f.parts[f.data[0]]).decode()
            if f.types[0] == gguf.GGUFValueType.STRING
            else f.parts[f.data[0]][0].item()
        )
        for key, f in fields.items()
        if not key.startswith("GGUF.") and f.types[0] != gguf.GGUFValueType.ARRAY
    }
    assert header == expected
    assert "tokenizer.ggml.tokens" not in header


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_header(path)


def test_a_student_model_is_loaded_without_the_hubs_kernels(tmp_path):
    """transformers >=5.24 kernelizes every model it loads unless told not to, fetching layer
    code from the Hub on a GPU: offline (the lent H200, a cluster node) the first training step
    failed with "not available in the local cache". A base and a full checkpoint load without."""
    from dataloop.students.loading import build_model, load_checkpoint, load_model
    from dataloop.students.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    build_model(tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = StudentConfig(model=str(tmp_path), method="full")
    assert load_model(config, tokenizer).use_kernels is False
    assert load_checkpoint(config, tmp_path).use_kernels is False
