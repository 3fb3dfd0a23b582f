"""Storage: the database, the models, row claims with leases, and the shop row."""
