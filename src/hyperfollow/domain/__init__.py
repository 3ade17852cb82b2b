"""Value types and pure venue rules. Imports nothing else from hyperfollow; no I/O, no clock reads."""
