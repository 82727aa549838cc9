"""Tests for the Azure platforms."""
