"""The law as data, below every domain package: the working-day calendar, period arithmetic and the
procedure profiles (sector × method), each value with the id of its rule in RULES.md."""
