"""`ggzy` sub-commands of the trading package: the demo and the notices benchmark."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach the trading commands to the `ggzy` CLI."""
    from trading.demo import demo

    cli.add_command(demo)
    try:
        from trading.bench import bench
    except ImportError:  # pragma: no cover - the bench module is optional in stripped installs
        return
    cli.add_command(bench)
