"""Bookings: the call to action as a real request for a visit (docs/bookings.md)."""
