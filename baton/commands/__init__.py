"""The `baton` sub-commands, one module per verb: each declares its arguments and runs them."""
