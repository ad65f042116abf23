"""The command line's adapters: each module declares one subcommand's options and calls
library functions with typed parameters (cli.py wires them)."""
