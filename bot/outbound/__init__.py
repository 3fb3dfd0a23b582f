"""Outbound texts: planning notices, the wording in force, event texts, the dispatcher and
the transports that hand texts to the provider.
"""
