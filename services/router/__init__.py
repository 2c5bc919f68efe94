"""Router: finds the office that must act on an appeal and dispatches it down the tiers."""
