"""Tests against a real vLLM server (CPU build, tiny model); see conftest.py."""
