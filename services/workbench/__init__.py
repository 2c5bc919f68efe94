"""The workbench: the offices' web UI, a client of the services' authorized APIs (issue 19)."""
