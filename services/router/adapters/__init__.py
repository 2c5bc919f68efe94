"""Router's ports and their implementations."""
