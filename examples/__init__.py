"""Small applications built on tarefa, each with a README and tests (tests/examples)."""
