"""CloudEvents envelope and the event catalogue of closeloop."""

from shared.events.envelope import Envelope, KafkaMessage
from shared.events.registry import REGISTRY, UnknownEventType, parse_data

__all__ = ["REGISTRY", "Envelope", "KafkaMessage", "UnknownEventType", "parse_data"]
