"""Pipelines that plug into a session (sessions.pipeline): audio → captions, text → agent turns."""
