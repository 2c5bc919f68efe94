"""fengqiao: shared runtime of the four services — settings, messaging, health, the local stack,
the platform simulator and the command line. Services import from here and from `contracts`,
never from each other."""

__version__ = "0.1.0"
