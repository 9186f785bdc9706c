"""``python -m anatomy_vlm`` (what ``torchrun -m anatomy_vlm train CONFIG`` launches): the CLI."""

from anatomy_vlm.cli import main

main()
