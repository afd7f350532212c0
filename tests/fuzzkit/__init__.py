"""The fuzz harness shared by the tests (bounded budget) and scripts/fuzz.py (long runs).

Seeds are real server and client bytes (tests/vectors, captures/zeek); mutations are
deterministic functions of a random.Random, so every defect has a reproducer (seed, input).
"""
