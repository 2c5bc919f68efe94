"""The services' runtime: settings, Kafka messaging with dead letters, the HTTP service shell
(health, readiness, metrics), the store, PII masking, the clock and webhook signing.

Services import from here and from `fengqiao.contracts`; nothing here imports a service or a tool
(`tests/project/test_architecture.py` holds that)."""
