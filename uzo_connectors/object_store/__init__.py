"""Object storage connectors (S3, Azure Blob, GCS, SFTP, FTP) built on the files connector."""
