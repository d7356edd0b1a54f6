"""`python -m vltrain`: the vltrain command line."""

from vltrain.cli import main

main()
