"""The training harness shared by lra/ and vision/: run records, callbacks, optimiser and schedule, and the
LightningCLI subclass behind ``python -m lra`` and ``python -m vision`` (docs/ARCHITECTURE.md sections 3 and 4)."""
