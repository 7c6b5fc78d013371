"""reZEN (Real Brokerage): transactions, listings, network, revenue share, equity and cap info."""
