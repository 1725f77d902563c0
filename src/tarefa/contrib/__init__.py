"""tarefa inside web frameworks: each module here fits tarefa into one
(``tarefa.contrib.fastapi``), and imports that framework only when it is
imported itself."""
