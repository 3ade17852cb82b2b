"""Composition root: settings, logging, CLI. The only place that wires concrete classes."""
