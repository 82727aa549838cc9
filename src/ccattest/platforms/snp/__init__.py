"""The `snp` platform: AMD SEV-SNP attestation reports.

A report is signed by a chip-unique key (VCEK) or by a key AMD lends to a cloud provider
(VLEK); AMD certifies both, through an intermediate (ASK or ASVK), up to a per-product
root (ARK) that ccattest pins. See FORMATS.md, "AMD SEV-SNP".
"""

PLATFORM = "snp"
PRODUCTS = ("Milan", "Genoa", "Turin")
