"""Ballots (issue #25): questions put to the members or to a petition's signers, answered anonymously and counted
in a log anyone can check."""
