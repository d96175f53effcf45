"""SQLAlchemy Core code both drivers share: the statements that are the same on every engine."""
