"""The federation's record: a per-site append-only, tamper-evident log of attestation
events (a Merkle tree, RFC 9162 section 2.1), its signed checkpoints and witnesses'
cosignatures, stored in SQLite or PostgreSQL. Free of NVFlare, like mesh/."""
