"""Shared by the unit and integration tests: pytest puts this folder on ``sys.path`` (helpers such as
``_standard_capabilities`` live here)."""
