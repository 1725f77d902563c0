"""An app whose import takes a while (a big framework starting): the worker
is told to stop while it imports. It says when its import began by creating
the file ``TAREFA_TEST_IMPORTING`` names."""

import os
import pathlib
import time

from tarefa import App

pathlib.Path(os.environ["TAREFA_TEST_IMPORTING"]).touch()
time.sleep(120)

app = App()
