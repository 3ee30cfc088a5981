"""A tiny command-line program shipped as native launchers (see ../BUILD)."""
