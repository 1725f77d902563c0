"""An App whose task's name, doc and queue hold what a terminal library could
read as markup (``tarefa tasks`` and ``tarefa cron`` must show them as they are)."""

from __future__ import annotations

from tarefa import App

app = App()

MARKUP_NAME = "odd[/x]:[bold]task:smile:"


@app.task(name=MARKUP_NAME, queue="odd:smile:", cron="0 0 1 1 *")
def odd() -> None:
    """Says [/x] and [bold]loud[/bold] :smile:."""
