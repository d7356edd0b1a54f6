"""`python -m vlprep`: the vlprep command line."""

from vlprep.cli import main

main()
