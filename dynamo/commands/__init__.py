"""One module per component's subcommands; `dynamo.cli` registers them all."""
