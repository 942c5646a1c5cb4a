"""Diff step: typed changes per aspect between a baseline and a candidate snapshot."""
