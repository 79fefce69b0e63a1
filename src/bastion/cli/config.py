"""`bastion config …`: the configuration file's JSON Schema, for editors that complete and check keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.config.schema import schema_text
from bastion.files import current_mode, replace_atomically

__all__ = ["app", "write_schema"]

app = typer.Typer(help="The configuration file (bastion.toml): its JSON Schema.", no_args_is_help=True)


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schema to this file (default: standard output).")
    ] = None,
) -> None:
    """Print the JSON Schema of bastion.toml, generated from Bastion's configuration models.

    Put it beside bastion.toml and start that file with the taplo directive
    `#:schema ./bastion.schema.json` (as `bastion init` does): Even Better TOML and other
    taplo-based editors then complete keys and flag typos as you write."""
    if output is None:
        typer.echo(schema_text(), nl=False)
        return
    write_schema(output)
    typer.echo(f"wrote {output}; beside bastion.toml, name it in that file's first line: #:schema ./{output.name}")


def write_schema(path: Path) -> None:
    """Write the schema to `path`, replacing any older one whole (never a half-written file)."""
    replace_atomically(path, schema_text().encode("utf-8"), mode=current_mode(path, 0o644))
