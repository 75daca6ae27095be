"""Analytics: funnels read from the funnel events."""
