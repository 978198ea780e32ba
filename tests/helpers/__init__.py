"""Fixture writers, case tables and callbacks shared by several test files (tests/ is on sys.path: see
pyproject.toml, [tool.pytest.ini_options] pythonpath)."""
