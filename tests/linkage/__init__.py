"""The linkage-attack suite: a production-like day (journey.py) and an attacker that reads only raw data
(adversary.py) and tries to tie each anonymous action to an account (tests/test_linkage.py runs both)."""
