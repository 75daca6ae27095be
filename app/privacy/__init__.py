"""Privacy: the notice, and a person managing their own data (withdraw consent, delete)."""
