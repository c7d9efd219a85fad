"""Engines that run a strategy spec over prices: event-driven (domain model)."""
