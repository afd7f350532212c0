"""`python -m rdprobe`: the same as the rdprobe command."""

from rdprobe.cli import main

main()
