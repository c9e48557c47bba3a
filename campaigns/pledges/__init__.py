"""The pledge: its line items, its lifecycle, its use cases and its schemas."""
