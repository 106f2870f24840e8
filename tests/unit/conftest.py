"""Fixtures of the unit tier: pure logic, no AWS. Shared ones (``stdout_records``, ``load_event``) live in tests/conftest.py."""
