"""tarefa over HTTP: the REST management API, the dashboard and /metrics."""
