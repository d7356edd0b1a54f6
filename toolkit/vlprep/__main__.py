"""`python -m vlprep`: the vlprep command line."""

from vlprep.cli.app import main

main()
