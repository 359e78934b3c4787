"""The ``mongodb`` connector: MongoDB collections through pymongo."""
