"""Tenders and listings in all four sectors: procedure profiles, lifecycle, notices, opening, awards."""
