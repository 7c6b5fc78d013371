"""SkySlope Transaction Management: sales (transactions), listings, users and offices of a brokerage."""
