"""A document pipeline: processing with progress, a cleanup cron, per-queue workers."""
