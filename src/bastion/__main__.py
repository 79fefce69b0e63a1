"""`python -m bastion` is the `bastion` command."""

from bastion.cli.main import main

main()
