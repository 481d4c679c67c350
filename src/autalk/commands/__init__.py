"""One module per ``autalk`` subcommand; each exposes ``add_parser(subparsers)``."""
