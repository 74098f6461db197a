"""The dashboard's screens, one per file; each holds the keys that act on what it shows."""
