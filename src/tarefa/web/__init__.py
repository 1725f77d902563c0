"""tarefa over HTTP: the REST management API (and, next, the dashboard and metrics)."""
