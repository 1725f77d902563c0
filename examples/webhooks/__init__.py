"""A webhook receiver: FastAPI answers, a tarefa worker does the work."""
