"""Shared test support: reusable fixtures' building blocks for every test package."""
