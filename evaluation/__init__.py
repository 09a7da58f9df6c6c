"""Evaluation: expert pool, avoidance, verifiable random draw, committees, evaluation rooms, scoring, reports."""
