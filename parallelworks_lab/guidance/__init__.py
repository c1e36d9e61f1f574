"""Guidance for researchers who are not HPC experts: why a job waits, when it starts, what it
used, and what to ask for next time. Plain functions over plain data; no scheduler calls here."""
