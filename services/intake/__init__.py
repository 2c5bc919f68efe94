"""Intake: takes the public's posts from platform webhooks and pollers, keeps every one
(Kafka `posts.raw`), and normalizes them into appeals (`appeals`)."""
