"""Util: the ground floor: the project's folders, atomic writes, file digests and locks, values shown to people.

Imports nothing of digits.
"""
