"""The list of subcommands. Each module is thin: it parses arguments and calls a library function.

Modules are imported here, but none of them imports torch/transformers at module level: `llmft --help`
and `llmft validate` stay fast.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from llmft.cli import (
        bench,
        chat,
        doctor,
        export,
        fetch,
        generate,
        hpo,
        merge,
        preview,
        report,
        schema_cmd,
        selftest,
        serve,
        synth,
        train,
        validate,
    )
    from llmft.cli.help_format import Command

    commands = (
        ("train", train.train),
        ("validate", validate.validate),
        ("doctor", doctor.doctor),
        ("hpo", hpo.hpo),
        ("preview", preview.preview),
        ("schema", schema_cmd.schema),
        ("selftest", selftest.selftest),
        ("bench", bench.bench),
        ("report", report.report),
        ("merge", merge.merge),
        ("export", export.export),
        ("generate", generate.generate),
        ("chat", chat.chat),
        ("serve", serve.serve),
        ("fetch", fetch.fetch),
    )
    for name, function in commands:  # Command: flags' help without typer's `<bool>` labels
        app.command(name, help=function.__doc__, cls=Command)(function)
    app.add_typer(synth.app, name="synth", help="Make synthetic data and tiny models for tests and demos.")
