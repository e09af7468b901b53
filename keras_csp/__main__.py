"""`python -m keras_csp ...` runs the `keras-csp` command line."""
from .cli import main

main()
