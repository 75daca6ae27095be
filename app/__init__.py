"""leadkit: a self-hosted server for lead-magnet tools."""
