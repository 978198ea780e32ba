"""``python -m lra fit|validate|test --config lra/configs/<task>.yaml`` (LightningCLI)."""
from harness.cli import HarnessCLI
from lra.task import SequenceClassificationTask

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


def main() -> None:
    HarnessCLI(SequenceClassificationTask, TASKS)


if __name__ == "__main__":
    main()
