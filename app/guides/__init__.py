"""Guides (干货文档): a document behind the gate."""
