"""The archc command line. Bad input exits 2 with a located message; anything else exits 1.

One module a family of commands; each registers itself on `main` when imported below."""
from __future__ import annotations

import click


@click.group(name="archc", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archc", prog_name="archc")
def main():
    """archc: compile a declarative network spec to an exact analysis and PyTorch code."""


from archc.cli import analyse, compare, export, training, views  # noqa: E402,F401  (registers the commands)
