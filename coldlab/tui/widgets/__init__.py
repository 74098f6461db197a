"""The dashboard's widgets: each renders itself from its own reactive state, set by the screens."""
