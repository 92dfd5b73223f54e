"""Renderers: findings and runs into text, JSON, Markdown and HTML."""
