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
        generate,
        hpo,
        merge,
        preview,
        report,
        schema_cmd,
        selftest,
        synth,
        train,
        validate,
    )
    from llmft.cli.help_format import Command

    app.command("train", help=train.train.__doc__, cls=Command)(train.train)
    app.command("validate", help=validate.validate.__doc__, cls=Command)(validate.validate)
    app.command("doctor", help=doctor.doctor.__doc__, cls=Command)(doctor.doctor)
    app.command("hpo", help=hpo.hpo.__doc__, cls=Command)(hpo.hpo)
    app.command("preview", help=preview.preview.__doc__, cls=Command)(preview.preview)
    app.command("schema", help=schema_cmd.schema.__doc__, cls=Command)(schema_cmd.schema)
    app.command("selftest", help=selftest.selftest.__doc__, cls=Command)(selftest.selftest)
    app.command("bench", help=bench.bench.__doc__, cls=Command)(bench.bench)
    app.command("report", help=report.report.__doc__, cls=Command)(report.report)
    app.command("merge", help=merge.merge.__doc__, cls=Command)(merge.merge)
    app.command("export", help=export.export.__doc__, cls=Command)(export.export)
    app.command("generate", help=generate.generate.__doc__, cls=Command)(generate.generate)
    app.command("chat", help=chat.chat.__doc__, cls=Command)(chat.chat)
    app.add_typer(synth.app, name="synth", help="Make synthetic data and tiny models for tests and demos.")
