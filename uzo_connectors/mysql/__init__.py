"""The ``mysql`` connector: MySQL and MariaDB through PyMySQL."""
