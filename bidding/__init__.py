"""Sealed bid envelopes: format, sealing, custodian key shares, opening."""
