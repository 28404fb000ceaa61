"""What the device keeps on disk: the scan archive and the SQLite file helpers it shares."""
