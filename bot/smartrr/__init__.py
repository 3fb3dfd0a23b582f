"""The Smartrr integration: the Vendor API client and its contract, sync, webhook events,
and the sandbox that stands in for Smartrr when no token is set.
"""
