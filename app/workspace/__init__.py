"""The staff workspace: the dashboard, the lead list and a lead's page."""
