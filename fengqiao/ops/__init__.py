"""`fengqiao ops`: what operators need to watch the topics and handle dead letters without
reading Kafka by hand (topics, lag, dlq, cases, metrics)."""


class Refused(Exception):
    """An operator asked for something that is not allowed or does not exist; the message
    says why."""


class Unreachable(Exception):
    """The cluster (or store) named by the settings does not answer; the message says which."""
