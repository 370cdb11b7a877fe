"""`assessiq` subcommands. Each module here defines `register(subparsers)`; the CLI finds
them all, so adding a command never touches another command's file."""
