"""Request and response models of the API (never ORM objects)."""
