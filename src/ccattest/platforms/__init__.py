"""Platforms: one package per evidence format, each split into abi / verify / collect."""
