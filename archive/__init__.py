"""The trade archive (G-09): when a tender ends, one signed, verifiable bundle of every record of it, kept for
the retention period."""
