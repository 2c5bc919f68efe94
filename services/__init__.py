"""The four fengqiao services. They never import each other: they talk through `contracts`."""
