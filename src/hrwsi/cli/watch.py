"""``hrwsi status --watch S``: the status report redrawn every S seconds (rich Live)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text


def watch(
    collect: Callable[[], dict[str, Any]],
    render: Callable[[dict[str, Any], Console], None],
    every_s: float,
    *,
    as_json: bool = False,
) -> None:
    """Collect and show the report every ``every_s`` seconds until Ctrl-C; ``--json`` prints
    one object per line instead of redrawing."""
    try:
        if as_json:
            while True:
                typer.echo(json.dumps(collect(), sort_keys=True))
                time.sleep(every_s)
        console = Console()
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while True:
                report = collect()
                capture = Console(width=console.width, record=True, file=io.StringIO())
                render(report, capture)
                stamp = Text(f"hrwsi status — every {every_s:g} s — Ctrl-C to stop", style="dim")
                live.update(
                    Group(stamp, Text.from_ansi(capture.export_text(styles=True))), refresh=True
                )
                time.sleep(every_s)
    except KeyboardInterrupt:
        return
