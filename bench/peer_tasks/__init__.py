"""One small module per system for bench/peers.py: the no-op task, how to
enqueue it (``enqueue_rate`` and ``preload``) and what its worker needs."""
