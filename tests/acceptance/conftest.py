"""Acceptance tests of the copy engine (issue 4, "Done when"): real leader fills replayed through the
embedded exchange and checked against an independent calculation (``test_accept_replay.py``), and the
engine killed with SIGKILL at random points in a child process (``test_accept_sigkill.py``,
``copy_child.py``). Shared helpers are in ``accept_support.py``; each test serves its own exchange on a free
127.0.0.1 port and stops it.
"""
