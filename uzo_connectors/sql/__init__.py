"""The SQL database family: shared code and the generic ``sqlalchemy`` connector."""
