"""Attestation-bound keys and sealed payloads: only attested sites can open a model."""
