"""The runtime: workers that lease, run and report jobs."""

from .worker import Worker

__all__ = ["Worker"]
