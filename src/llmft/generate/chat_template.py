"""The chat template and stop tokens a run trained with, settled once and saved with the model.

Training renders conversations segment by segment (``llmft.data.templates``) so the loss mask follows the
segment borders. After training, plain ``tokenizer.apply_chat_template(...)`` on the saved tokenizer must give
the very ids training used, and generation must stop at every token that ends a turn. So the template used,
built-in ones included, is written as a Jinja chat template (with the BOS that training prepends when the
template itself does not render it), and the end-of-turn ids go to ``generation_config.json``'s
``eos_token_id``.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmft.data.templates import ALPACA_HEADER, Alpaca, ChatML, Template, TokenizerTemplate
from llmft.data.tokenize import leading_special_ids


def _quote(text: str) -> str:
    """A Jinja string literal (JSON escaping is valid Jinja for the characters that matter here)."""
    return json.dumps(text)


def chatml_jinja(eos: str) -> str:
    """ChatML exactly as ``ChatML.segments`` renders it; an assistant turn ends with ``eos``."""
    return (
        "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['role'] == 'assistant' -%}"
        "{{- message['content'] + " + _quote(eos) + " + '\\n' -}}"
        "{%- else -%}"
        "{{- message['content'] + '<|im_end|>\\n' -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


def alpaca_jinja(eos: str) -> str:
    """Alpaca exactly as ``Alpaca.segments`` renders it: the first system turn replaces the header, turns
    are joined by a blank line, and the prompt already ends where the response starts."""
    return (
        "{%- set ns = namespace(system=none, after_answer=false) -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' and ns.system is none -%}"
        "{%- set ns.system = message['content'] -%}"
        "{%- endif -%}{%- endfor -%}"
        "{{- (ns.system if ns.system is not none else " + _quote(ALPACA_HEADER) + ") + '\\n\\n' -}}"
        "{%- for message in messages -%}"
        "{%- if message['role'] in ('user', 'assistant') and ns.after_answer -%}{{- '\\n\\n' -}}{%- endif -%}"
        "{%- if message['role'] == 'user' -%}"
        "{{- '### Instruction:\\n' + message['content'] + '\\n\\n### Response:\\n' -}}"
        "{%- set ns.after_answer = false -%}"
        "{%- elif message['role'] == 'assistant' -%}"
        "{{- message['content'] + " + _quote(eos) + " -}}"
        "{%- set ns.after_answer = true -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
    )


def _bos_prefix(tokenizer: object, rendered_start: str) -> str:
    """What training puts before the first segment on its own (``encode_conversation``), as template text."""
    prefix = leading_special_ids(tokenizer)
    bos = getattr(tokenizer, "bos_token", None)
    if not prefix or (bos and rendered_start.startswith(str(bos))):
        return ""
    tokens = tokenizer.convert_ids_to_tokens(prefix)  # type: ignore[attr-defined]
    if bos and tokens == [bos]:
        return "{{- bos_token -}}"
    return "{{- " + _quote("".join(tokens)) + " -}}"


SAMPLE = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def jinja_template(template: Template, tokenizer: object) -> str:
    """The Jinja chat template that renders conversations exactly as training tokenized them."""
    if isinstance(template, ChatML):
        body = chatml_jinja(template.eos)
    elif isinstance(template, Alpaca):
        body = alpaca_jinja(template.eos)
    elif isinstance(template, TokenizerTemplate):
        body = str(getattr(tokenizer, "chat_template", "") or "")
    else:  # a template kind this module does not know yet must not be saved as something else
        raise TypeError(f"no Jinja form for template {type(template).__name__}")
    first = "".join(s.text for s in template.segments(SAMPLE))
    return _bos_prefix(tokenizer, first) + body


def end_of_turn_id(template: Template, tokenizer: object) -> int | None:
    """The special token that closes an assistant turn (``<|im_end|>``, ``<|eot_id|>``, ``</s>``), read off
    the template's own rendering of a sample answer; None when the turn ends in plain text."""
    trained = [s for s in template.segments(SAMPLE) if s.trainable]
    if not trained:
        return None
    ids = tokenizer(trained[-1].text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    special = set(getattr(tokenizer, "all_special_ids", [])) | set(
        getattr(tokenizer, "added_tokens_decoder", {}) or {}
    )
    return int(ids[-1]) if ids and ids[-1] in special else None


def stop_token_ids(template: Template | None, tokenizer: object, model_eos: object = None) -> list[int]:
    """Every id that ends a turn: the template's end-of-turn token first, then the tokenizer's EOS and any the
    base model's generation config already lists."""
    found = [end_of_turn_id(template, tokenizer) if template is not None else None]
    found.append(getattr(tokenizer, "eos_token_id", None))
    found.extend(model_eos if isinstance(model_eos, list) else [model_eos])
    ids: list[int] = []
    for value in found:
        if value is not None and int(value) not in ids:  # type: ignore[call-overload]
            ids.append(int(value))  # type: ignore[call-overload]
    return ids


def generation_config_of(model: object) -> object | None:
    """The generation config ``generate`` reads: the base model's, inside peft/accelerate wrappers."""
    inner = getattr(model, "module", model)
    get_base = getattr(inner, "get_base_model", None)
    base = get_base() if callable(get_base) else inner
    return getattr(base, "generation_config", None)


def settle_generation(model: object, tokenizer: object, template: Template | None) -> list[int]:
    """Put the trained template on the tokenizer and every end-of-turn id on the model's generation config,
    so the live model, the saved one and ``llmft.load`` all render and stop the same way. Returns the ids."""
    if template is not None:
        tokenizer.chat_template = jinja_template(template, tokenizer)  # type: ignore[attr-defined]
    config = generation_config_of(model)
    ids = stop_token_ids(template, tokenizer, getattr(config, "eos_token_id", None))
    if config is not None:
        config.eos_token_id = ids if len(ids) > 1 else ids[0]  # type: ignore[attr-defined]
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is not None:
            config.pad_token_id = int(pad)  # type: ignore[attr-defined]
    return ids


def settle_for_run(model: object, tokenizer: object, template_name: str | None, data_format: str) -> None:
    """``settle_generation`` for a run whose data was encoded with template ``template_name`` (None: none,
    e.g. plain text or seq2seq rows); the pipeline calls this once, after the model is loaded."""
    from llmft.data.templates import choose_template

    if generation_config_of(model) is None:  # a classifier: nothing is generated
        return
    template = choose_template(template_name, tokenizer, data_format) if template_name else None
    settle_generation(model, tokenizer, template)


def save_generation_files(model: object, tokenizer: object, target: Path) -> None:
    """Beside the saved weights and tokenizer: ``generation_config.json`` (peft writes none for an adapter,
    and its stop ids are part of what training settled) and the chat template in ``tokenizer_config.json``
    too, where tools that predate ``chat_template.jinja`` (and GGUF converters) look for it."""
    config = generation_config_of(model)
    if config is not None:
        config.save_pretrained(str(target))  # type: ignore[attr-defined]
    template = getattr(tokenizer, "chat_template", None)
    config_file = target / "tokenizer_config.json"
    if isinstance(template, str) and config_file.is_file():
        data = json.loads(config_file.read_text(encoding="utf-8"))
        data["chat_template"] = template
        config_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
