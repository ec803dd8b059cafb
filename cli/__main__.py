"""`python -m cli ...` is the same as `mlops ...`."""

from cli.main import main

main()
