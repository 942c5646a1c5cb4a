"""Compatibility regression gate for container OS base images.

Data flows one way: source -> snapshot -> diff -> policy -> outcome (report).
"""

__version__ = "0.1.0"
