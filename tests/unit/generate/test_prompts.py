def test_content_parts_in_a_prompt_file_are_read_as_training_reads_them() -> None:
    from llmft.generate.prompts import from_raw

    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "value": "there"}]},
            {"role": "assistant", "content": "Yo", "loss_weight": 1},
        ]
    }
    prompt = from_raw(row)
    assert prompt.messages == [{"role": "user", "content": "Hi\nthere"}] and prompt.reference == "Yo"
