"""The deposit ledger (保证金): accounts, journal, balances, refunds, interest, and the auditors' proof."""
