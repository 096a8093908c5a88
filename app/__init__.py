"""Undersigned: employee petitions and collective feedback."""
