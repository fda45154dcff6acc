"""Storage: SQLModel tables, the database connection, and the queries the service runs."""
