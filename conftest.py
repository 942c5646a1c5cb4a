"""Root conftest: the harness plugin itself is registered through its `pytest11` entry point
(pyproject.toml); nothing is declared here so options stay in one place."""
