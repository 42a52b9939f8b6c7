"""pumpctl's commands, one module each (or per family): each command's arguments, help and
examples stand beside its run(args) as a `Command` (common.py); pumpctl.cli lists them in one
table, in the order `pumpctl --help` shows them, and dispatches."""
