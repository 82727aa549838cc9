"""The `software` platform: a development TEE for tests, demos and machines without TEE
hardware.

It gives NO hardware guarantee: the report is signed by a key that lives in ordinary
memory and files, certified by a local "software root" CA. It proves which site produced
a report, what that site declared it runs, and that the report answers a given challenge;
it cannot prove that the site is telling the truth about itself. Policies reject it unless
they allow `software` by name.
"""

PLATFORM = "software"
