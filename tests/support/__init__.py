"""Helpers the tests share: real processes, leases, doctor, transactions, hostile input."""
