"""The outbox: leadkit's one way out for everything outgoing (docs/development.md)."""
