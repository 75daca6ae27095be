"""Branded PDF reports of a tool's result, rendered by WeasyPrint in a process pool and cached."""
