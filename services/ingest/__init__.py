"""Ingest: validate CloudEvents posted over HTTP, drop duplicates, publish the rest to Kafka."""
