import sys

# Importing course (which `python -m course` does before this file runs) sets the CPU levers'
# environment before Paddle loads: see course/cpu.py.
from .cli import main

sys.exit(main())
