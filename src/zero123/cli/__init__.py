"""Command line interface: a thin layer over typed library functions (one file per command)."""
