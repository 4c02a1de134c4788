"""Kafka adapters: the embedded broker, topic provisioning and the CloudEvents Kafka binding."""
