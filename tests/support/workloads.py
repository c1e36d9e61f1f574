"""Job bodies whose resource use is known, for the tests of what a job used."""

# Holds ~200 MiB for a moment and burns ~1.5 s of CPU on one core.
HUNGRY = (
    "import time\n"
    "block = bytearray(200 * 1024 * 1024)\n"
    "for i in range(0, len(block), 4096): block[i] = 1\n"
    "end = time.process_time() + 1.5\n"
    "while time.process_time() < end: pass\n"
    "time.sleep(1.5)\n"
)
