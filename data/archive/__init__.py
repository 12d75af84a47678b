"""The archive of every live value and forecast fetched (SQLite or PostgreSQL), and its
export to the Electricity Maps CSV layout."""
