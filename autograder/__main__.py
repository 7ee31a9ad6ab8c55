"""python -m autograder {grade,check}: see autograder.cli."""
import sys

from .cli import main

sys.exit(main())
